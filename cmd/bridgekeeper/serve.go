package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/cryptobackend"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/ops"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

func (e *env) serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker",
		Long: `Run the broker: migrate the database, load or create the signing keys,
launch the connector plugins and serve the OpenID Connect endpoints.

With no configuration file, the defaults serve http://127.0.0.1:8080 from an
SQLite database in ./data; a missing system secret is generated next to the
SQLite database (a log line says where).`,
		Example: `  bridgekeeper serve --issuer http://127.0.0.1:8080 --listen 127.0.0.1:8080 --dsn sqlite:data/bk.db
  bridgekeeper serve --config /etc/bridgekeeper/config.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			return e.serve(cmd.Context(), cfg)
		},
	}
	e.bindConfig(cmd, true)
	return cmd
}

func (e *env) serve(ctx context.Context, cfg config.Config) error {
	log := e.logger(cfg)
	// Bind the listeners first: an address in use is found before the
	// database, the system secret and the signing keys are created.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen (--listen %s): %w", cfg.Listen, err)
	}
	defer ln.Close()
	var mln net.Listener
	if cfg.Metrics.Listen != "" && !cfg.Metrics.Off {
		if mln, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics listener (--metrics.listen %s): %w", cfg.Metrics.Listen, err)
		}
		defer mln.Close()
	}
	store, sec, err := e.openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	km, err := keys.New(ctx, store, keysOptions(cfg, sec, log))
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	metrics := ops.NewMetrics()
	m, err := mailer(cfg)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	bcfg := brokerConfig(cfg, store, sec, log)
	if bcfg.Factors, err = mfa.New(mfa.Config{Store: store, Secret: sec, Issuer: cfg.UI.ProductName}); err != nil {
		return fmt.Errorf("second factors: %w", err)
	}
	if bcfg.Passkeys, err = passkeys(cfg, store, log); err != nil {
		return err
	}
	acc, err := newAccounts(cfg, store, m, bcfg, log)
	if err != nil {
		return fmt.Errorf("account pages: %w", err)
	}
	defer acc.Close()
	fed, err := federation.New(ctx, federation.Config{
		Store:           store,
		Logger:          log.With("component", "federation"),
		Issuer:          cfg.Issuer,
		LinkByEmail:     cfg.Accounts.LinkByEmail,
		DataKey:         sec.Derive(secret.PurposeConnectorData),
		Connectors:      cfg.Connectors,
		RecheckInterval: recheckInterval(cfg.Federation.RecheckInterval),
	})
	if err != nil {
		return fmt.Errorf("connectors: %w", err)
	}
	defer fed.Close() // after the HTTP server has drained (defers run last in, first out)

	// The broker gets every part at construction: this is the one place
	// that wires the production graph.
	bcfg.Keys = km
	bcfg.GrantObserver = metrics.ObserveGrant
	withAccounts(&bcfg, acc)
	bcfg.LoginOptions = fed.LoginOptions()
	bcfg.SessionCheck = fed.SessionCheck
	bcfg.RefreshCheck = fed.Refresh
	bcfg.Mounts = append(bcfg.Mounts, fed.Mount)
	srv, err := broker.New(ctx, bcfg)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer srv.Close()

	handler, metricsHandler, err := operations(cfg, srv, store, km, fed, metrics, log)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go km.Run(ctx)
	go collectGarbage(ctx, store, cfg.GC.Interval, log)

	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	if metricsHandler != nil && mln != nil {
		ms := &http.Server{Handler: metricsHandler, ReadHeaderTimeout: 10 * time.Second}
		defer ms.Close()
		go func() { errc <- ms.Serve(mln) }()
		log.Info("metrics are served", "listen", mln.Addr().String(), "path", "/metrics")
	}
	go func() {
		if cfg.TLS.CertFile != "" {
			errc <- hs.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	log.Info("bridgekeeper is serving", "issuer", cfg.Issuer, "listen", ln.Addr().String(),
		"discovery", cfg.Issuer+"/.well-known/openid-configuration", "database", store.Dialect(),
		"crypto", cryptobackend.Name())

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	shutdownCtx, done := context.WithTimeout(context.Background(), 15*time.Second)
	defer done()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown did not finish cleanly", "err", err)
	}
	return nil
}

func brokerConfig(cfg config.Config, store *storage.Store, sec *secret.System, log *slog.Logger) broker.Config {
	reuseGrace := cfg.Tokens.RefreshReuseGrace
	if reuseGrace == 0 {
		reuseGrace = -1 // the config's 0 is off; the broker's zero is its default
	}
	return broker.Config{
		Issuer:                cfg.Issuer,
		Store:                 store,
		Secret:                sec,
		Logger:                log,
		AccessTokenLifetime:   cfg.Tokens.AccessTokenLifetime,
		IDTokenLifetime:       cfg.Tokens.IDTokenLifetime,
		RefreshTokenLifetime:  cfg.Tokens.RefreshTokenLifetime,
		AuthorizeCodeLifetime: cfg.Tokens.AuthorizeCodeLifetime,
		RefreshReuseGrace:     reuseGrace,
		DPoPNonce:             cfg.DPoP.Nonce,
		DPoPProofMaxAge:       cfg.DPoP.ProofMaxAge,
		SessionLifetime:       cfg.Session.Lifetime,
		PendingLoginLifetime:  cfg.Session.PendingLoginLifetime,
		TemplateDir:           cfg.UI.TemplateDir,
		MFA:                   cfg.Accounts.MFA,
		Theme:                 uiTheme(cfg),
	}
}

// collectGarbage deletes expired rows on a schedule. Several replicas may
// run it at once: the deletes are idempotent.
func collectGarbage(ctx context.Context, store *storage.Store, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := store.DeleteExpired(ctx, time.Now())
			if err != nil {
				log.Warn("garbage collection failed", "err", err)
				continue
			}
			if n > 0 {
				log.Info("deleted expired rows", "rows", n)
			}
		}
	}
}

// recheckInterval maps federation.recheck_interval to
// federation.Config.RecheckInterval, where 0 means the default: a
// configured 0 (or less) re-checks on every silent reuse.
func recheckInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
