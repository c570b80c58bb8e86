package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/ops"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// operations wraps the broker in what operators need: trusted-proxy
// handling, request ids, the access log, Prometheus metrics and the
// health endpoints. It returns the main handler and, when metrics.listen
// is set (and metrics.off is not), the metrics listener's handler.
func operations(cfg config.Config, srv *broker.Server, store *storage.Store, km *keys.Manager, fed *federation.Federation, m *ops.Metrics, log *slog.Logger) (http.Handler, http.Handler, error) {
	proxies, err := ops.ParseCIDRs(splitList(cfg.TrustedProxies))
	if err != nil {
		return nil, nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	health := ops.NewHealth(log.With("component", "health"),
		ops.DatabaseCheck(store.Ping),
		ops.MigrationsCheck(store.MigrationStatus),
	)
	var errs []error
	errs = append(errs, m.RegisterDatabase(store.Ping, store.PoolStats))
	errs = append(errs, m.RegisterSigningKeyAge(func(ctx context.Context) (time.Time, error) {
		infos, err := km.List(ctx)
		if err != nil {
			return time.Time{}, err
		}
		for _, k := range infos {
			if k.State == keys.StateCurrent {
				return k.Activated, nil
			}
		}
		return time.Time{}, errors.New("no current signing key")
	}))
	for _, c := range cfg.Connectors {
		if p := fed.Plugin(c.ID); p != nil {
			// One check per connector. A broken connector leaves local
			// login, /token and the JWKS working: by default it makes the
			// broker degraded (200), not unready, unless
			// federation.require_connectors says otherwise.
			health.Add(ops.Check{Name: "connector " + c.ID, Run: p.Healthy, Optional: !cfg.Federation.RequireConnectors})
			errs = append(errs, m.RegisterPlugin(c.ID, p))
			p.SetCallObserver(func(call plugins.Call) {
				m.ObservePluginCall(c.ID, call.Method, call.Outcome, call.Duration, call.Upstream)
			})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}

	prefix := ""
	if u, err := url.Parse(cfg.Issuer); err == nil {
		prefix = strings.TrimRight(u.Path, "/")
	}
	opts := ops.Options{
		Logger:         log.With("component", "http"),
		Metrics:        m,
		Health:         health,
		PathPrefix:     prefix,
		TrustedProxies: proxies,
	}
	if router, ok := srv.Handler().(*mux.Router); ok {
		opts.Route = ops.MuxRoute(router)
	}
	// /metrics is never on the public listener: it tells anyone the
	// clients' error rates, the connectors and the database's health.
	// metrics.listen serves it on an address of its own.
	var metricsHandler http.Handler
	if cfg.Metrics.Off || cfg.Metrics.Listen == "" {
		opts.Metrics = nil
	} else {
		metricsHandler = m.Handler()
	}
	return ops.Wrap(srv.Handler(), opts), metricsHandler, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
