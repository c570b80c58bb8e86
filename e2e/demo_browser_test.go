package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// TestDemoInBrowser runs what `make run` runs — the broker on SQLite, the
// example API and the React demo (Vite) — and drives the demo in headless
// Chromium: log in through the broker's form, the profile page calls the
// API, a reload keeps the session, logout ends it; then "Continue with
// Okta" logs in through the connector plugin and fakeidp playing Okta, and
// checkout forces a refresh grant (counted by the broker's metrics). As in
// `make run`, the demo client is registered with --require-dpop and the
// example API requires DPoP-bound tokens from it.
func TestDemoInBrowser(t *testing.T) {
	requireChromium(t)
	node := testenv.Tool(t, "node", "node")
	testenv.Require(t, testenv.FileExists("../wasm/example/node_modules/vite"), "npm packages of wasm/example (make npm-deps)")
	testenv.Require(t, testenv.FileExists("../wasm/dist/bridgekeeper.wasm"), "the built client package (make wasm-build)")

	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("demo-secret-", 4)}
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	brokerAddr, apiAddr, appAddr, idpAddr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	issuer, api, app, upstream := "http://"+brokerAddr, "http://"+apiAddr, "http://"+appAddr, "http://"+idpAddr

	// fakeidp plays Okta; the broker reaches it through the connector-oidc plugin.
	users := filepath.Join(dir, "fakeidp.yaml")
	writeFile(t, users, `users:
  - {subject: "3001", email: grace@example.com, email_verified: true, name: Grace Hopper}
clients:
  - {id: bridgekeeper, secret: bridgekeeper-secret, redirect_uris: ["`+issuer+`/callback/okta"]}
`)
	idp := testenv.Start(t, testenv.Command(testenv.Binary(t, "./cmd/fakeidp"), nil, "--listen", idpAddr, "--users", users))
	idp.WaitHTTP(t, upstream+"/oauth2/default/.well-known/openid-configuration")
	config := filepath.Join(dir, "bridgekeeper.yaml")
	writeFile(t, config, `issuer: `+issuer+`
listen: `+brokerAddr+`
dsn: `+dsn+`
metrics: {listen: "`+metricsAddr+`"}
connectors:
  - id: okta
    name: Okta
    path: `+testenv.Binary(t, "./cmd/connector-oidc")+`
    trust_email: true
    config: {preset: okta, domain: example.okta.com, issuer: "`+upstream+`/oauth2/default", client_id: bridgekeeper, client_secret: bridgekeeper-secret}
`)
	email, password := "ada@example.com", "correct horse battery staple"

	testenv.CLI(t, env, "", "client", "create", "--dsn", dsn, "--id", "demo", "--public",
		"--redirect-uri", app+"/callback", "--allowed-origin", app, "--post-logout-redirect-uri", app+"/",
		"--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "offline_access", "--scope", "checkout",
		"--default-audience", api, "--require-dpop")
	testenv.CLI(t, env, password+"\n", "user", "create", "--dsn", dsn, "--email", email, "--name", "Ada", "--password-stdin")

	testenv.Serve(t, env, issuer, "--config", config)
	apiProc := testenv.Start(t, testenv.Command(testenv.Binary(t, "./cmd/example-api"), nil, "--issuer", issuer, "--listen", apiAddr, "--audience", api, "--allowed-origin", app,
		"--dpop-required-client", "demo"))
	apiProc.WaitHTTP(t, api+"/api/health")

	host, port, _ := strings.Cut(appAddr, ":")
	vite := testenv.Start(t, testenv.Command("../wasm/example/node_modules/.bin/vite",
		[]string{"VITE_BK_ISSUER=" + issuer, "VITE_BK_CLIENT_ID=demo", "VITE_BK_API=" + api},
		"--host", host, "--port", port, "--strictPort", "../wasm/example"))
	vite.WaitHTTP(t, app+"/")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "demo.mjs")
	cmd.Dir = "browser"
	// Screenshots of the main pages are kept as test artifacts (ignored by git).
	shots, err := filepath.Abs("../wasm/test-results/demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "BK_APP="+app, "BK_EMAIL="+email, "BK_PASSWORD="+password, "BK_SHOTS="+shots,
		"BK_UPSTREAM_USER=Grace Hopper", "BK_UPSTREAM_EMAIL=grace@example.com", "BK_ISSUER="+issuer, "BK_METRICS=http://"+metricsAddr)
	out, err := cmd.CombinedOutput()
	t.Logf("demo in Chromium:\n%s", out)
	if err != nil {
		t.Fatalf("demo browser test failed: %v (screenshots in %s)", err, shots)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatal("demo browser test did not finish")
	}

	// The Okta login went through the plugin: its calls are in the metrics
	// (served on metrics.listen, not on the public listener).
	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, method := range []string{"LoginURL", "HandleCallback"} {
		want := `bridgekeeper_plugin_call_duration_seconds_count{connector="okta",method="` + method + `",outcome="ok"} `
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s…", want)
		}
	}
	// connector-oidc reports the time it waited for the upstream (the code
	// redemption at fakeidp).
	if want := `bridgekeeper_plugin_upstream_duration_seconds_count{connector="okta",method="HandleCallback"} `; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s…", want)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
