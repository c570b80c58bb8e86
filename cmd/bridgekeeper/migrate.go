package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

func (e *env) migrateCommand() *cobra.Command {
	var status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations",
		Long: `Apply every pending database migration and report the schema version.
serve does this at start too; run it on its own before rolling out new
replicas. Safe to run from several processes at once.`,
		Example: `  bridgekeeper migrate --dsn sqlite:data/bk.db
  bridgekeeper migrate --dsn postgres://bridgekeeper@db/bridgekeeper --status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			store, err := storage.Open(ctx, cfg.DSN)
			if err != nil {
				return fmt.Errorf("open database: %w", err)
			}
			defer store.Close()
			if !status {
				if err := store.Migrate(ctx); err != nil {
					return fmt.Errorf("migrate: %w", err)
				}
			}
			applied, pending, err := store.MigrationStatus(ctx)
			if err != nil {
				return fmt.Errorf("migration status: %w", err)
			}
			fmt.Fprintf(e.stdout, "%s database: %d migrations applied, %d pending\n", store.Dialect(), applied, pending)
			return nil
		},
	}
	cmd.Flags().BoolVar(&status, "status", false, "only report the schema version; apply nothing")
	e.bindConfig(cmd, false)
	return cmd
}
