package ops

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "bridgekeeper"

// Metrics is the broker's Prometheus registry and its instruments. It
// uses its own registry (no global state), with the Go runtime and process
// collectors registered.
type Metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	durations      *prometheus.HistogramVec
	grants         *prometheus.CounterVec
	pluginCalls    *prometheus.HistogramVec
	pluginUpstream *prometheus.HistogramVec
}

// pluginBuckets are the histogram buckets of plugin calls and of their
// upstream part, 0.5 ms to 10 s.
var pluginBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics builds a registry with the broker's instruments.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "token_grants_total",
			Help: "Token endpoint requests by grant type and outcome (ok or the OAuth 2.0 error code).",
		}, []string{"grant_type", "outcome"}),
		pluginCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "plugin_call_duration_seconds",
			Help:    "Time of calls to connector plugins, by connector, method and outcome (ok, timeout, crash, denied, bad_identity, error).",
			Buckets: pluginBuckets,
		}, []string{"connector", "method", "outcome"}),
		pluginUpstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "plugin_upstream_duration_seconds",
			Help:    "Part of connector plugin calls spent waiting for the upstream identity provider, as the plugin reports it, by connector and method.",
			Buckets: pluginBuckets,
		}, []string{"connector", "method"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.durations, m.grants, m.pluginCalls, m.pluginUpstream,
	)
	return m
}

// Registry is the registry, for callers that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	method = knownMethod(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.durations.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveGrant counts one token request. grantType is the request's
// grant_type and outcome "ok" or the OAuth 2.0 error code of the answer;
// values outside the known sets count as "other", so a client cannot
// grow the label set.
func (m *Metrics) ObserveGrant(grantType, outcome string) {
	m.grants.WithLabelValues(knownGrantType(grantType), knownOutcome(outcome)).Inc()
}

// ObservePluginCall records one call to a connector plugin: its duration
// and, when the plugin reported it, the part spent waiting for the
// upstream identity provider. outcome is one of ok, timeout, crash,
// denied, bad_identity and error (plugins.Call.Outcome); any other value
// counts as error. The connector id and method come from the
// configuration and the code, not from requests.
func (m *Metrics) ObservePluginCall(connector, method, outcome string, d, upstream time.Duration) {
	m.pluginCalls.WithLabelValues(connector, method, knownPluginOutcome(outcome)).Observe(d.Seconds())
	if upstream > 0 {
		m.pluginUpstream.WithLabelValues(connector, method).Observe(upstream.Seconds())
	}
}

func knownPluginOutcome(o string) string {
	switch o {
	case "ok", "timeout", "crash", "denied", "bad_identity", "error":
		return o
	}
	return "error"
}

// PluginState is what the metrics read from a connector plugin on every
// scrape; plugins.Plugin implements it.
type PluginState interface {
	// Up reports whether the plugin's process runs.
	Up() bool
	// Restarts counts launches after a crash.
	Restarts() int
	// LaunchFailures counts failed launches by reason, every known reason
	// present from the start.
	LaunchFailures() map[string]int
}

// RegisterPlugin exports a connector plugin's state:
// bridgekeeper_plugin_up{connector} (1 or 0),
// bridgekeeper_plugin_restarts_total{connector} and
// bridgekeeper_plugin_launch_failures_total{connector,reason}.
func (m *Metrics) RegisterPlugin(connector string, p PluginState) error {
	labels := prometheus.Labels{"connector": connector}
	c := &pluginCollector{
		p: p,
		up: prometheus.NewDesc(namespace+"_plugin_up",
			"Whether the connector plugin's process runs (1) or not (0): it died and was not launched again yet, its launch failed, or launches are paused after repeated failures.", nil, labels),
		restarts: prometheus.NewDesc(namespace+"_plugin_restarts_total",
			"How often a connector plugin was launched again after its process died.", nil, labels),
		failures: prometheus.NewDesc(namespace+"_plugin_launch_failures_total",
			"Launches of a connector plugin after the first that failed, by reason (path, checksum, handshake, configure; paused: a launch held back after repeated failures).", []string{"reason"}, labels),
	}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("ops: plugin %q: %w", connector, err)
	}
	return nil
}

type pluginCollector struct {
	p                      PluginState
	up, restarts, failures *prometheus.Desc
}

func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.restarts
	ch <- c.failures
}

func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.p.Up() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(c.p.Restarts()))
	for reason, n := range c.p.LaunchFailures() {
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(n), reason)
	}
}

// RegisterSigningKeyAge exports the age of the current signing key as
// bridgekeeper_signing_key_age_seconds. created returns when the current
// key was created (e.g. from keys.Manager.List); it is called on every
// scrape with a short deadline. A failing call leaves the gauge out of
// that scrape.
func (m *Metrics) RegisterSigningKeyAge(created func(context.Context) (time.Time, error)) error {
	desc := prometheus.NewDesc(namespace+"_signing_key_age_seconds",
		"Time since the current signing key was created.", nil, nil)
	return m.register("signing key age", &funcCollector{desc: desc, collect: func(ctx context.Context) (float64, error) {
		t, err := created(ctx)
		if err != nil {
			return 0, err
		}
		return time.Since(t).Seconds(), nil
	}})
}

// RegisterDatabase exports the database's round-trip time, measured by
// ping on every scrape, as bridgekeeper_database_ping_seconds, and
// bridgekeeper_database_up (1 or 0). With poolStats set (storage's
// Store.PoolStats fits), the connection pool's statistics (go_sql_*) are
// exported too.
func (m *Metrics) RegisterDatabase(ping func(context.Context) error, poolStats func() sql.DBStats) error {
	up := prometheus.NewDesc(namespace+"_database_up", "Whether the database answered the last ping (1) or not (0).", nil, nil)
	latency := prometheus.NewDesc(namespace+"_database_ping_seconds", "Round-trip time of a database ping.", nil, nil)
	if err := m.register("database", &pingCollector{up: up, latency: latency, ping: ping}); err != nil {
		return err
	}
	if poolStats != nil {
		return m.register("database pool", newPoolCollector(poolStats))
	}
	return nil
}

// poolCollector exports a connection pool's statistics as the go_sql_*
// metrics of client_golang's DBStatsCollector (db_name="bridgekeeper"),
// from the statistics alone: nothing outside storage holds the pool.
type poolCollector struct {
	stats   func() sql.DBStats
	metrics []poolMetric
}

type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(sql.DBStats) float64
}

func newPoolCollector(stats func() sql.DBStats) *poolCollector {
	c := &poolCollector{stats: stats}
	add := func(name, help string, kind prometheus.ValueType, value func(sql.DBStats) float64) {
		desc := prometheus.NewDesc("go_sql_"+name, help, nil, prometheus.Labels{"db_name": namespace})
		c.metrics = append(c.metrics, poolMetric{desc: desc, kind: kind, value: value})
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	add("max_open_connections", "Maximum number of open connections to the database.", gauge, func(s sql.DBStats) float64 { return float64(s.MaxOpenConnections) })
	add("open_connections", "The number of established connections both in use and idle.", gauge, func(s sql.DBStats) float64 { return float64(s.OpenConnections) })
	add("in_use_connections", "The number of connections currently in use.", gauge, func(s sql.DBStats) float64 { return float64(s.InUse) })
	add("idle_connections", "The number of idle connections.", gauge, func(s sql.DBStats) float64 { return float64(s.Idle) })
	add("wait_count_total", "The total number of connections waited for.", counter, func(s sql.DBStats) float64 { return float64(s.WaitCount) })
	add("wait_duration_seconds_total", "The total time blocked waiting for a new connection.", counter, func(s sql.DBStats) float64 { return s.WaitDuration.Seconds() })
	add("max_idle_closed_total", "The total number of connections closed due to SetMaxIdleConns.", counter, func(s sql.DBStats) float64 { return float64(s.MaxIdleClosed) })
	add("max_idle_time_closed_total", "The total number of connections closed due to SetConnMaxIdleTime.", counter, func(s sql.DBStats) float64 { return float64(s.MaxIdleTimeClosed) })
	add("max_lifetime_closed_total", "The total number of connections closed due to SetConnMaxLifetime.", counter, func(s sql.DBStats) float64 { return float64(s.MaxLifetimeClosed) })
	return c
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.stats()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(stats))
	}
}

func (m *Metrics) register(what string, c prometheus.Collector) error {
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("ops: %s: %w", what, err)
	}
	return nil
}

// scrapeTimeout bounds the calls a collector makes on a scrape.
const scrapeTimeout = 2 * time.Second

type funcCollector struct {
	desc    *prometheus.Desc
	collect func(context.Context) (float64, error)
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	v, err := c.collect(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v)
}

type pingCollector struct {
	up, latency *prometheus.Desc
	ping        func(context.Context) error
}

func (c *pingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.up; ch <- c.latency }

func (c *pingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	start := time.Now()
	err := c.ping(ctx)
	d := time.Since(start)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, d.Seconds())
}

// MuxRoute names requests by the path template of the gorilla/mux route
// that served them (e.g. "/oauth2/token"); requests that matched no route
// are "unmatched". It adds a middleware to router that notes the route
// gorilla/mux matched, so a request is not matched a second time for its
// name. Pass the broker's root router (broker.Server.Handler() is one).
func MuxRoute(router *mux.Router) func(*http.Request) string {
	router.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slot, ok := r.Context().Value(routeSlotKey{}).(*routeSlot); ok {
				slot.name = routeTemplate(mux.CurrentRoute(r))
			}
			next.ServeHTTP(w, r)
		})
	})
	return func(r *http.Request) string {
		if slot, ok := r.Context().Value(routeSlotKey{}).(*routeSlot); ok && slot.name != "" {
			return slot.name
		}
		return "unmatched"
	}
}

func routeTemplate(route *mux.Route) string {
	if route == nil {
		return "unmatched"
	}
	tpl, err := route.GetPathTemplate()
	if err != nil {
		if name := route.GetName(); name != "" {
			return name
		}
		return "unnamed"
	}
	return tpl
}

// routeSlot is where a router notes the route of the request observe is
// timing (see MuxRoute).
type routeSlot struct{ name string }

type routeSlotKey struct{}

func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func knownGrantType(g string) string {
	switch g {
	case "authorization_code", "refresh_token", "client_credentials", "password", "implicit",
		"urn:ietf:params:oauth:grant-type:device_code",
		"urn:ietf:params:oauth:grant-type:jwt-bearer",
		"urn:ietf:params:oauth:grant-type:token-exchange":
		return g
	case "":
		return "none"
	}
	return "other"
}

func knownOutcome(o string) string {
	switch o {
	case "ok", "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
		"unsupported_grant_type", "invalid_scope", "access_denied", "server_error",
		"temporarily_unavailable", "request_unauthorized", "request_forbidden",
		"invalid_token", "authorization_pending", "slow_down", "expired_token":
		return o
	}
	return "other"
}
