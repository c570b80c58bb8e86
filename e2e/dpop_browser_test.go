package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// dpopBroker starts a broker on SQLite with the public client id (a browser
// app served at app), registered with --require-dpop when require is set,
// and the user ada@example.com. It returns the issuer URL.
func dpopBroker(t *testing.T, id, redirect, app string, require bool, extraServe ...string) string {
	t.Helper()
	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("e2e-secret-", 4)}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	addr := testenv.FreeAddr(t)
	issuer := "http://" + addr
	create := []string{"client", "create", "--dsn", dsn, "--id", id, "--public",
		"--redirect-uri", redirect, "--allowed-origin", app, "--post-logout-redirect-uri", strings.TrimSuffix(redirect, "callback"),
		"--scope", "openid", "--scope", "profile", "--scope", "email", "--scope", "offline_access"}
	if require {
		create = append(create, "--require-dpop")
	}
	testenv.CLI(t, env, "", create...)
	testenv.CLI(t, env, "correct horse battery staple\n", "user", "create", "--dsn", dsn,
		"--email", "ada@example.com", "--name", "Ada", "--password-stdin")
	testenv.Serve(t, env, issuer, append([]string{"--issuer", issuer, "--listen", addr, "--dsn", dsn}, extraServe...)...)
	return issuer
}

// runNode runs a node script in dir with env (added to the test's) and
// fails the test unless it reports every check passed.
func runNode(t *testing.T, dir, script string, env ...string) {
	t.Helper()
	node := testenv.Tool(t, "node", "node")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("%s did not finish", script)
	}
}

func requireChromium(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/usr/bin/chromium")
	testenv.Require(t, err == nil || os.Getenv("CHROMIUM_PATH") != "", "chromium (apt-get install -y chromium)")
	testenv.Require(t, testenv.FileExists("../wasm/node_modules/playwright-core"), "the npm packages of wasm (make npm-deps)")
}

// TestDPoPBrowserClient drives the browser client (wasm/testapp on the
// built package) in headless Chromium against a broker that requires DPoP
// for it: a refresh token page script decrypts from IndexedDB and hands to
// a Node process is invalid_grant there while the page keeps refreshing
// with it; a copied access token is refused by /userinfo without a proof
// from the key (as Bearer, without a proof, with a proof for another method
// or URL, with a replayed proof); what an XSS can still do (have the stored
// key sign a proof for its server while the page is open); the key cannot
// be exported and is replaced at logout. With dpop.nonce on, the client
// answers the nonce challenges (code exchange, refresh, userinfo) and a
// proof made without the current nonce is refused. A client not registered
// with --require-dpop gets DPoP all the same (the browser client's
// default), and the stolen refresh token alone is invalid_grant. See
// browser/dpop.mjs.
func TestDPoPBrowserClient(t *testing.T) {
	requireChromium(t)
	testenv.Require(t, testenv.FileExists("../wasm/dist/bridgekeeper.wasm"), "the built client package (make wasm-build)")
	shots, err := filepath.Abs("../wasm/test-results/dpop")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		require, nonce bool
	}{
		{"required", true, false},
		{"required, nonces on", true, true},
		{"not required", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			appAddr := testenv.FreeAddr(t)
			app := "http://" + appAddr
			var serve []string
			if c.nonce {
				serve = append(serve, "--dpop.nonce")
			}
			issuer := dpopBroker(t, "test-spa", app+"/testapp/callback", app, c.require, serve...)
			flag := map[bool]string{false: "0", true: "1"}
			runNode(t, "browser", "dpop.mjs", "BK_ISSUER="+issuer, "BK_APP="+appAddr,
				"BK_EMAIL=ada@example.com", "BK_PASSWORD=correct horse battery staple", "BK_SHOTS="+shots,
				"BK_NONCE="+flag[c.nonce], "BK_REQUIRED="+flag[c.require])
		})
	}
}

// TestDPoPOidcClientTS: oidc-client-ts with its dpop setting, in headless
// Chromium, logs in (the code bound to its key), refreshes and calls
// /userinfo with a proof against a broker that requires DPoP for its
// client; its refresh and access tokens copied out are refused without the
// key. See oidc-client-ts/flow.mjs.
func TestDPoPOidcClientTS(t *testing.T) {
	requireChromium(t)
	testenv.Require(t, testenv.FileExists("oidc-client-ts/node_modules/oidc-client-ts"), "oidc-client-ts (npm ci --prefix e2e/oidc-client-ts)")
	appAddr := testenv.FreeAddr(t)
	app := "http://" + appAddr
	issuer := dpopBroker(t, "oidc-client-ts", app+"/callback", app, true)
	runNode(t, "oidc-client-ts", "flow.mjs", "BK_ISSUER="+issuer, "BK_CLIENT=oidc-client-ts", "BK_APP="+appAddr,
		"BK_EMAIL=ada@example.com", "BK_PASSWORD=correct horse battery staple")
}
