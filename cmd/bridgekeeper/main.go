// Command bridgekeeper is the Bridgekeeper OpenID Connect identity broker:
// the server (serve), its database migrations (migrate) and the
// administration of clients, users and signing keys.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/ops"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bridgekeeper:", err)
		os.Exit(1)
	}
}

// env is what every command needs: its streams and the configuration.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	flags          map[*cobra.Command]*config.Flags
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "bridgekeeper",
		Short: "Bridgekeeper, a pluggable OpenID Connect identity broker",
		Long: `Bridgekeeper is an OpenID Connect issuer for your applications. Users log in
with a local account or through upstream identity providers (Okta, Google,
Facebook, or any connector plugin); your apps and APIs only ever see
Bridgekeeper's tokens.

Quick start (embedded SQLite, secrets generated next to the database; in a
checkout, make build puts this binary at bin/bridgekeeper):

  bridgekeeper serve --issuer http://127.0.0.1:8080 --listen 127.0.0.1:8080 --dsn sqlite:data/bk.db
  bridgekeeper client create --dsn sqlite:data/bk.db --id spa --public \
      --redirect-uri http://127.0.0.1:5173/callback --allowed-origin http://127.0.0.1:5173 \
      --post-logout-redirect-uri http://127.0.0.1:5173/
  echo 'a-long-password' | bridgekeeper user create --dsn sqlite:data/bk.db --email me@example.com --password-stdin

--dsn is sqlite:PATH or postgres://USER@HOST/DB.

Every command takes --config FILE (YAML, ${ENV} expanded); flags win over the file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, flags: map[*cobra.Command]*config.Flags{}}
	root.AddCommand(
		e.serveCommand(),
		e.migrateCommand(),
		e.clientCommand(),
		e.keyCommand(),
		e.userCommand(),
		e.pluginCommand(),
	)
	return root
}

// bindConfig adds --config and the configuration flags to cmd. With all
// false, only the flags that locate the database and its secret are added.
func (e *env) bindConfig(cmd *cobra.Command, all bool) {
	cmd.Flags().StringVarP(&e.configPath, "config", "c", os.Getenv("BRIDGEKEEPER_CONFIG"), "YAML configuration file (default $BRIDGEKEEPER_CONFIG)")
	fs := pflag.NewFlagSet("config", pflag.ContinueOnError)
	e.flags[cmd] = config.BindFlags(fs, config.Default())
	fs.VisitAll(func(f *pflag.Flag) {
		if all || f.Name == "dsn" || f.Name == "secrets.system" || strings.HasPrefix(f.Name, "log.") ||
			(cmd.Name() == "rotate" && strings.HasPrefix(f.Name, "keys.")) {
			cmd.Flags().AddFlag(f)
		}
	})
}

// loadConfig reads the file (if any) and applies the flags the user set.
func (e *env) loadConfig(cmd *cobra.Command) (config.Config, error) {
	cfg, err := config.Load(e.configPath)
	if err != nil {
		return cfg, err
	}
	e.flags[cmd].Apply(&cfg)
	if v := os.Getenv("BRIDGEKEEPER_DSN"); v != "" && cfg.DSN == config.Default().DSN && e.configPath == "" {
		cfg.DSN = v
	}
	// A DSN that cannot work is said first, before a secret or a file
	// is looked for or created on its behalf.
	if err := storage.CheckDSN(cfg.DSN); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (e *env) logger(cfg config.Config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(e.stderr, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(e.stderr, opts)
	}
	return slog.New(ops.LogHandler(h)) // adds the request id of the request being served
}

// openStore opens and migrates the database the configuration names, and
// loads the system secret (generating it next to an SQLite database).
func (e *env) openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*storage.Store, *secret.System, error) {
	sec, err := secret.Load(cfg.Secrets.System, cfg.DSN)
	if err != nil {
		return nil, nil, err
	}
	if sec.Generated {
		log.Warn("generated a new system secret; keep this file safe and back it up with the database", "file", sec.Path)
	}
	store, err := storage.Open(ctx, cfg.DSN)
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("migrate database: %w", err)
	}
	files := store.Files()
	if sec.Path != "" {
		files = append(files, sec.Path)
	}
	warnExposed(log, files)
	return store, sec, nil
}

// warnExposed warns about each file that users other than its owner may
// read or write: the SQLite database (tokens, sessions, password hashes)
// and the system secret (the key to all of them). The broker creates them
// private (0600); an older or copied file may not be.
func warnExposed(log *slog.Logger, files []string) {
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue // absent (a log not written yet) or unreadable: nothing to say
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			log.Warn("this file holds secrets but other users may access it: chmod 600 it (and its directory 700)",
				"file", f, "mode", fmt.Sprintf("%#o", perm))
		}
	}
}
