// Package ops holds what an operator needs around the broker's HTTP
// handler: Prometheus metrics, liveness and readiness endpoints, request
// ids carried into every log line, an access log, and client addresses
// taken from X-Forwarded-* headers only when the direct peer is a trusted
// proxy.
//
// Wrap composes all of it around a handler:
//
//	m := ops.NewMetrics()
//	h := ops.NewHealth(ops.DatabaseCheck(store.Ping), ops.MigrationsCheck(store.MigrationStatus))
//	handler := ops.Wrap(srv.Handler(), ops.Options{Logger: log, Metrics: m, Health: h, ...})
package ops

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"
)

// Options configures Wrap. Every field is optional.
type Options struct {
	// Logger receives one access-log line per request (nil: no access
	// log) and the report of a handler that panicked.
	Logger *slog.Logger
	// Metrics counts requests and durations (nil: no request metrics).
	Metrics *Metrics
	// MetricsPath serves Metrics at this path of the wrapped handler, e.g.
	// "/metrics" (empty: not served here; mount Metrics.Handler on a
	// separate listener instead).
	MetricsPath string
	// Health serves PathPrefix+"/healthz" and PathPrefix+"/readyz" (nil:
	// neither).
	Health *Health
	// PathPrefix is the issuer's path ("" or e.g. "/auth"), under which
	// the health endpoints and MetricsPath are served.
	PathPrefix string
	// Route names the route of a request for metrics and the access log;
	// it must return a small, fixed set of values (a route template, never
	// the raw path). MuxRoute builds one from a gorilla/mux router. Nil:
	// every request is "other".
	Route func(*http.Request) string
	// TrustedProxies are the networks whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed.
	TrustedProxies []netip.Prefix
}

// Wrap returns next behind, from the outside in: trusted-proxy handling
// (r.RemoteAddr becomes the client's address), the request id, panic
// recovery, the access log and request metrics, and the health and metrics
// endpoints.
func Wrap(next http.Handler, o Options) http.Handler {
	h := next
	if o.Health != nil || o.MetricsPath != "" {
		mux := http.NewServeMux()
		if o.Health != nil {
			mux.Handle("GET "+o.PathPrefix+PathHealthz, o.Health.LiveHandler())
			mux.Handle("GET "+o.PathPrefix+PathReadyz, o.Health.ReadyHandler())
		}
		if o.MetricsPath != "" && o.Metrics != nil {
			mux.Handle("GET "+o.PathPrefix+o.MetricsPath, o.Metrics.Handler())
		}
		mux.Handle("/", next)
		h = mux
	}
	h = observe(h, withOwnRoutes(o))
	h = RequestID(h)
	h = NewProxies(o.TrustedProxies).Middleware(h)
	return h
}

// Paths of the health endpoints.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// withOwnRoutes names the endpoints Wrap serves itself by their paths.
func withOwnRoutes(o Options) Options {
	own := map[string]string{}
	if o.Health != nil {
		own[o.PathPrefix+PathHealthz] = PathHealthz
		own[o.PathPrefix+PathReadyz] = PathReadyz
	}
	if o.MetricsPath != "" && o.Metrics != nil {
		own[o.PathPrefix+o.MetricsPath] = o.MetricsPath
	}
	next := o.Route
	o.Route = func(r *http.Request) string {
		if name, ok := own[r.URL.Path]; ok {
			return name
		}
		if next == nil {
			return "other"
		}
		return next(r)
	}
	return o
}

// observe records every request: metrics, access log, and a 500 for a
// handler that panicked before answering.
func observe(next http.Handler, o Options) http.Handler {
	route := o.Route
	if route == nil {
		route = func(*http.Request) string { return "other" }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), routeSlotKey{}, &routeSlot{}))
		start := time.Now()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				if o.Logger != nil {
					o.Logger.ErrorContext(r.Context(), "handler panicked", "panic", v, "stack", string(debug.Stack()))
				}
				if !rec.wroteHeader {
					http.Error(rec, "internal server error", http.StatusInternalServerError)
				}
			}
			d := time.Since(start)
			status := rec.statusCode()
			name := route(r)
			if o.Metrics != nil {
				o.Metrics.observeRequest(name, r.Method, status, d)
			}
			if o.Logger != nil {
				o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path), // never the query: it holds codes and tokens
					slog.String("route", name),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", d),
					slog.String("client_ip", ClientIP(r)),
					slog.String("scheme", Scheme(r)),
					slog.String("user_agent", r.UserAgent()),
				)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) statusCode() int {
	if !r.wroteHeader {
		return http.StatusOK
	}
	return r.status
}
