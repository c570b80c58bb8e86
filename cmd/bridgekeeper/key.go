package main

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
)

func (e *env) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the JWT signing keys",
		Long: `Manage the JWT signing keys.

The broker always publishes the next key in its JWKS before it signs with it,
and keeps a retired key published until every token it signed has expired.
Running replicas pick up a rotation within their reload interval (30s).`,
	}
	cmd.AddCommand(e.keyListCommand(), e.keyRotateCommand())
	return cmd
}

func (e *env) withKeys(cmd *cobra.Command, fn func(context.Context, *keys.Manager) error) error {
	ctx := cmd.Context()
	cfg, err := e.loadConfig(cmd)
	if err != nil {
		return err
	}
	log := e.logger(cfg)
	store, sec, err := e.openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	km, err := keys.New(ctx, store, keysOptions(cfg, sec, log))
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	return fn(ctx, km)
}

// keysOptions is the key manager's configuration; serve and the key
// commands share it so they agree on algorithm and key lifetimes.
func keysOptions(cfg config.Config, sec *secret.System, log *slog.Logger) keys.Options {
	period := cfg.Keys.RotationPeriod
	if period <= 0 {
		period = -1 // the configuration's "no scheduled rotation"
	}
	return keys.Options{
		Algorithm:        cfg.Keys.Algorithm,
		EncryptionKey:    sec.Derive(secret.PurposeKeyEncryption),
		RotationPeriod:   period,
		MaxTokenLifetime: broker.MaxTokenLifetime(brokerConfig(cfg, nil, sec, log)),
		Logger:           log.With("component", "keys"),
	}
}

func (e *env) keyListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withKeys(cmd, func(ctx context.Context, km *keys.Manager) error {
				infos, err := km.List(ctx)
				if err != nil {
					return err
				}
				return printKeys(e, infos)
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func (e *env) keyRotateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate now: the published next key starts signing",
		Long: `Rotate the signing keys now: the next key (already published in the JWKS)
becomes the signing key, the current one is retired but stays published
until the tokens it signed have expired, and a new next key is published.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withKeys(cmd, func(ctx context.Context, km *keys.Manager) error {
				if err := km.Rotate(ctx); err != nil {
					return fmt.Errorf("rotate: %w", err)
				}
				fmt.Fprintln(e.stdout, "rotated; signing keys now:")
				infos, err := km.List(ctx)
				if err != nil {
					return err
				}
				return printKeys(e, infos)
			})
		},
	}
	e.bindConfig(cmd, false)
	return cmd
}

func printKeys(e *env, infos []keys.Info) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tLEAVES JWKS")
	for _, k := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.State, fmtTime(k.Created), fmtTimeOrDash(k.Activated), fmtTimeOrDash(k.RemoveAt))
	}
	return tw.Flush()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func fmtTimeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmtTime(t)
}
