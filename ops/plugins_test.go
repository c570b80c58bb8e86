package ops_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/ops"
	"github.com/bridgekeeper/bridgekeeper/plugins"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// launchPlugin copies the plugins package's test plugin cmd (testconnector
// or hostileconnector) into a directory of the test's own (a test removes
// it), launches it as connector id and wires it into m as cmd/bridgekeeper
// does.
func launchPlugin(t *testing.T, m *ops.Metrics, id, cmd string, change func(*plugins.Config)) (*plugins.Plugin, string) {
	t.Helper()
	path := testenv.CopyBinary(t, "./plugins/internal/"+cmd)
	cfg := plugins.Config{ID: id, Path: path, Config: []byte(`{"issuer":"https://idp.test"}`)}
	if change != nil {
		change(&cfg)
	}
	p, err := plugins.Launch(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := m.RegisterPlugin(id, p); err != nil {
		t.Fatal(err)
	}
	p.SetCallObserver(func(c plugins.Call) { m.ObservePluginCall(id, c.Method, c.Outcome, c.Duration, c.Upstream) })
	return p, path
}

func scrapeMetrics(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestPluginMetricsFollowRealPlugins backs docs/ops.md's plugin metrics and
// alerts with real plugin processes: each call outcome (ok, timeout,
// crash, denied, bad_identity, error) moves its own series; an identity
// without a subject is bad_identity, not ok; a plugin whose binary is gone
// after a crash shows bridgekeeper_plugin_up 0 and its failed and paused
// relaunches in bridgekeeper_plugin_launch_failures_total (both alerts of
// docs/ops.md fire), while bridgekeeper_plugin_restarts_total stays 0.
func TestPluginMetricsFollowRealPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs plugins")
	}
	m := ops.NewMetrics()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	p, path := launchPlugin(t, m, "test", "testconnector", func(c *plugins.Config) {
		c.CallTimeout = time.Second
		c.CrashBackoff = time.Minute
	})
	hostile, _ := launchPlugin(t, m, "hostile", "hostileconnector", nil)
	ctx := context.Background()
	callback := func(conn connectors.CallbackConnector, state string, q url.Values) {
		_, _ = conn.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: []byte(state), CallbackURL: "https://broker.test/callback", Query: q})
	}
	login := func(hint string) {
		_, _ = p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", CallbackURL: "https://broker.test/callback", LoginHint: hint})
	}

	login("")                                                              // ok
	callback(p.Connector(), "nonce-s", url.Values{"code": {"alice"}})      // ok
	callback(p.Connector(), "nonce-s", url.Values{"error": {"denied"}})    // denied
	callback(p.Connector(), "nonce-s", url.Values{"code": {"no-email"}})   // denied (policy)
	callback(p.Connector(), "nonce-s", url.Values{"code": {"no-subject"}}) // bad_identity
	callback(hostile.Connector(), "ok", url.Values{"code": {"huge"}})      // bad_identity (reply over the limit)
	callback(hostile.Connector(), "ok", url.Values{"code": {"long-subject"}})
	callback(p.Connector(), "nonce-s", url.Values{"code": {"internal"}}) // error
	login("hang")                                                        // timeout

	body := scrapeMetrics(t, srv)
	for _, want := range []string{
		`bridgekeeper_plugin_up{connector="test"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="LoginURL",outcome="ok"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="HandleCallback",outcome="ok"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="HandleCallback",outcome="denied"} 2`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="HandleCallback",outcome="bad_identity"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="hostile",method="HandleCallback",outcome="bad_identity"} 2`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="HandleCallback",outcome="error"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="LoginURL",outcome="timeout"} 1`,
		`bridgekeeper_plugin_launch_failures_total{connector="test",reason="path"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// The plugin exits mid-call and its binary is gone (a botched
	// upgrade): two relaunches fail, then launches pause.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	login("exit") // crash
	login("")     // crash: the relaunch fails
	login("")     // crash: the relaunch fails, launches pause
	login("")     // crash: the relaunch is held back
	if err := p.Healthy(ctx); err == nil {
		t.Error("health check passes with the plugin gone")
	}
	body = scrapeMetrics(t, srv)
	for _, want := range []string{
		`bridgekeeper_plugin_up{connector="test"} 0`,
		`bridgekeeper_plugin_up{connector="hostile"} 1`,
		`bridgekeeper_plugin_call_duration_seconds_count{connector="test",method="LoginURL",outcome="crash"} 4`,
		`bridgekeeper_plugin_launch_failures_total{connector="test",reason="path"} 2`,
		`bridgekeeper_plugin_launch_failures_total{connector="test",reason="paused"} 2`,
		`bridgekeeper_plugin_restarts_total{connector="test"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("after the crash: metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
