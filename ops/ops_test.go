package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// logBuffer is a goroutine-safe sink for a JSON slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records decodes the JSON log lines whose msg is msg.
func (l *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(LogHandler(slog.NewJSONHandler(buf, nil))), buf
}

// testRouter mimics the broker: a gorilla/mux router with a template route.
func testRouter(log *slog.Logger) *mux.Router {
	r := mux.NewRouter()
	r.HandleFunc("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "token issued")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"x"}`)
	}).Methods(http.MethodPost)
	r.HandleFunc("/callback/{connector}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad callback", http.StatusBadRequest)
	})
	r.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		var m map[string]int
		m["x"]++ // a handler bug: nil map write panics
	})
	return r
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func TestWrapCountsRequestsByRouteTemplate(t *testing.T) {
	log, _ := newLogger()
	router := testRouter(log)
	m := NewMetrics()
	srv := httptest.NewServer(Wrap(router, Options{Metrics: m, MetricsPath: "/metrics", Route: MuxRoute(router)}))
	defer srv.Close()

	for range 3 {
		do(t, mustRequest(t, http.MethodPost, srv.URL+"/oauth2/token"))
	}
	do(t, mustRequest(t, http.MethodGet, srv.URL+"/callback/okta?code=secret"))
	do(t, mustRequest(t, http.MethodGet, srv.URL+"/callback/google"))
	do(t, mustRequest(t, http.MethodGet, srv.URL+"/no/such/page/1"))
	do(t, mustRequest(t, http.MethodGet, srv.URL+"/no/such/page/2"))
	do(t, mustRequest(t, "BREW", srv.URL+"/oauth2/token"))
	m.ObserveGrant("refresh_token", "invalid_grant")
	m.ObserveGrant("refresh_token\n"+strings.Repeat("x", 500), "made-up error")

	body := scrape(t, srv.URL+"/metrics")
	for _, want := range []string{
		`bridgekeeper_http_requests_total{code="200",method="POST",route="/oauth2/token"} 3`,
		`bridgekeeper_http_requests_total{code="400",method="GET",route="/callback/{connector}"} 2`,
		`bridgekeeper_http_requests_total{code="404",method="GET",route="unmatched"} 2`,
		`bridgekeeper_http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`bridgekeeper_http_request_duration_seconds_count{method="POST",route="/oauth2/token"} 3`,
		`bridgekeeper_token_grants_total{grant_type="refresh_token",outcome="invalid_grant"} 1`,
		`bridgekeeper_token_grants_total{grant_type="other",outcome="other"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "/no/such/page") || strings.Contains(body, "okta") {
		t.Error("raw paths leaked into metric labels")
	}
}

func TestCollectorsForDatabasePluginsAndKeys(t *testing.T) {
	store, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(t)
	m := NewMetrics()
	if err := m.RegisterDatabase(store.Ping, store.PoolStats); err != nil {
		t.Fatal(err)
	}
	state := &fakePlugin{up: true, restarts: 2, failures: map[string]int{"path": 0, "configure": 1}}
	if err := m.RegisterPlugin("okta", state); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterPlugin("okta", state); err == nil {
		t.Error("registering the same connector twice succeeded")
	}
	created := time.Now().Add(-90 * time.Minute)
	if err := m.RegisterSigningKeyAge(func(context.Context) (time.Time, error) { return created, nil }); err != nil {
		t.Fatal(err)
	}
	m.ObservePluginCall("okta", "HandleCallback", "ok", 3*time.Millisecond, 2*time.Millisecond)
	m.ObservePluginCall("okta", "HandleCallback", "crash", 7*time.Millisecond, 0)
	m.ObservePluginCall("okta", "HandleCallback", "made-up", 7*time.Millisecond, 0)
	m.ObservePluginCall("okta", "LoginURL", "ok", time.Millisecond, 0)

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, want := range []string{
		"bridgekeeper_database_up 1",
		"bridgekeeper_database_ping_seconds ",
		`go_sql_open_connections{db_name="bridgekeeper"}`,
		`bridgekeeper_plugin_restarts_total{connector="okta"} 2`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="okta",method="HandleCallback",outcome="ok"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="okta",method="HandleCallback",outcome="crash"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="okta",method="HandleCallback",outcome="error"} 1`,
		`bridgekeeper_plugin_up{connector="okta"} 1`,
		`bridgekeeper_plugin_launch_failures_total{connector="okta",reason="configure"} 1`,
		`bridgekeeper_plugin_launch_failures_total{connector="okta",reason="path"} 0`,
		`bridgekeeper_plugin_upstream_duration_seconds_count{connector="okta",method="HandleCallback"} 1`,
		`bridgekeeper_plugin_upstream_duration_seconds_sum{connector="okta",method="HandleCallback"} 0.002`,
		"bridgekeeper_signing_key_age_seconds 5400",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	if strings.Contains(body, `bridgekeeper_plugin_upstream_duration_seconds_count{connector="okta",method="LoginURL"}`) {
		t.Error("a call without upstream time is in the upstream histogram")
	}

	store.Close() // the database goes away: up turns 0, the scrape still works
	body = scrape(t, srv.URL)
	if !strings.Contains(body, "bridgekeeper_database_up 0") {
		t.Error("a closed database still reports up")
	}
}

func TestReadinessFollowsMigrationsAndDatabase(t *testing.T) {
	ctx := context.Background()
	dsn := storagetest.Backend{Name: storage.DialectSQLite}.EmptyDSN(t)
	store, err := storage.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log, logs := newLogger()
	pluginDown := errors.New("connector \"okta\": health check: connection refused")
	var pluginErr error = pluginDown
	h := NewHealth(log, DatabaseCheck(store.Ping), MigrationsCheck(store.MigrationStatus))
	h.Add(Check{Name: "connector okta", Run: func(context.Context) error { return pluginErr }})
	srv := httptest.NewServer(Wrap(http.NotFoundHandler(), Options{Health: h, PathPrefix: "/auth"}))
	defer srv.Close()

	ready := func() (int, healthBody) {
		res, err := http.Get(srv.URL + "/auth/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b healthBody
		if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
			t.Fatalf("readyz body: %v", err)
		}
		return res.StatusCode, b
	}

	code, b := ready()
	if code != http.StatusServiceUnavailable || b.Status != "unavailable" ||
		strings.Join(b.Failing, ",") != "migrations,connector okta" || b.Checks["database"] != "ok" {
		t.Fatalf("unmigrated: %d %+v", code, b)
	}
	if got := logs.records(t, "readiness check failed"); len(got) != 2 {
		t.Errorf("logged %d failed checks, want 2", len(got))
	}

	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	pluginErr = nil
	if code, b = ready(); code != http.StatusOK || b.Status != "ok" || len(b.Failing) != 0 {
		t.Fatalf("ready: %d %+v", code, b)
	}

	store.Close()
	code, b = ready()
	if code != http.StatusServiceUnavailable || !contains(b.Failing, "database") {
		t.Fatalf("closed database: %d %+v", code, b)
	}
	if raw := scrape(t, srv.URL+"/auth/healthz"); !strings.Contains(raw, `"status":"ok"`) {
		t.Errorf("healthz with the database down: %s", raw)
	}
	res, err := http.Get(srv.URL + "/auth/readyz")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(raw), "closed") || strings.Contains(string(raw), "refused") {
		t.Errorf("readyz body leaks error text: %s", raw)
	}
}

func TestReadinessCheckTimesOut(t *testing.T) {
	h := NewHealth(nil, Check{Name: "stuck", Run: func(ctx context.Context) error {
		select {} // ignores its context
	}})
	h.timeout = 50 * time.Millisecond
	errs := h.Run(context.Background())
	if errs[0] == nil {
		t.Fatal("a stuck check passed")
	}
}

func TestRequestIDAndAccessLog(t *testing.T) {
	log, logs := newLogger()
	router := testRouter(log)
	srv := httptest.NewServer(Wrap(router, Options{Logger: log, Route: MuxRoute(router)}))
	defer srv.Close()

	cases := []struct {
		sent string
		keep bool
	}{
		{"trace-abc.123:x_y", true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"é", false},
		{`"><script>`, false},
	}
	for _, c := range cases {
		req := mustRequest(t, http.MethodPost, srv.URL+"/oauth2/token?code=topsecret")
		if c.sent != "" {
			req.Header.Set(HeaderRequestID, c.sent)
		}
		res := do(t, req)
		got := res.Header.Get(HeaderRequestID)
		if c.keep && got != c.sent {
			t.Errorf("sent %q, echoed %q", c.sent, got)
		}
		if !c.keep && (got == c.sent || !saneRequestID(got)) {
			t.Errorf("sent %q, echoed %q (want a fresh id)", c.sent, got)
		}
		// The handler's own log line and the access line carry the id.
		issued := logs.records(t, "token issued")
		access := logs.records(t, "request")
		if issued[len(issued)-1]["request_id"] != got || access[len(access)-1]["request_id"] != got {
			t.Errorf("log lines lack request id %q: %v / %v", got, issued[len(issued)-1], access[len(access)-1])
		}
	}
	a := logs.records(t, "request")[0]
	if a["path"] != "/oauth2/token" || a["route"] != "/oauth2/token" || a["status"] != float64(200) ||
		a["method"] != "POST" || a["client_ip"] != "127.0.0.1" || a["scheme"] != "http" {
		t.Errorf("access line: %v", a)
	}
	logs.mu.Lock()
	all := logs.b.String()
	logs.mu.Unlock()
	if strings.Contains(all, "topsecret") {
		t.Error("the access log holds the query string")
	}
}

func TestPanicBecomes500AndIsLogged(t *testing.T) {
	log, logs := newLogger()
	router := testRouter(log)
	srv := httptest.NewServer(Wrap(router, Options{Logger: log, Route: MuxRoute(router)}))
	defer srv.Close()
	res := do(t, mustRequest(t, http.MethodGet, srv.URL+"/boom"))
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d", res.StatusCode)
	}
	p := logs.records(t, "handler panicked")
	if len(p) != 1 || p[0]["request_id"] != res.Header.Get(HeaderRequestID) {
		t.Fatalf("panic log: %v", p)
	}
	if a := logs.records(t, "request"); len(a) != 1 || a[0]["status"] != float64(500) {
		t.Fatalf("access line: %v", a)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type fakePlugin struct {
	up       bool
	restarts int
	failures map[string]int
}

func (f *fakePlugin) Up() bool                       { return f.up }
func (f *fakePlugin) Restarts() int                  { return f.restarts }
func (f *fakePlugin) LaunchFailures() map[string]int { return f.failures }

// TestReadinessDegradedByAnOptionalCheck: a failing optional check (a
// connector) answers 200 "degraded" naming it; a failing required check
// still answers 503.
func TestReadinessDegradedByAnOptionalCheck(t *testing.T) {
	var dbErr error
	down := errors.New("down")
	h := NewHealth(nil,
		Check{Name: "database", Run: func(context.Context) error { return dbErr }},
		Check{Name: "connector okta", Run: func(context.Context) error { return down }, Optional: true},
		Check{Name: "connector github", Run: func(context.Context) error { return nil }, Optional: true},
	)
	srv := httptest.NewServer(h.ReadyHandler())
	defer srv.Close()
	get := func() (int, healthBody) {
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b healthBody
		if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, b
	}
	code, b := get()
	if code != http.StatusOK || b.Status != "degraded" || strings.Join(b.Failing, ",") != "connector okta" ||
		b.Checks["connector github"] != "ok" || b.Checks["database"] != "ok" {
		t.Errorf("optional check failing: %d %+v; want 200 degraded naming connector okta", code, b)
	}
	dbErr = down
	if code, b = get(); code != http.StatusServiceUnavailable || b.Status != "unavailable" ||
		strings.Join(b.Failing, ",") != "database,connector okta" {
		t.Errorf("required check failing too: %d %+v; want 503 unavailable", code, b)
	}
}
