package federation_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

func oktaOnly(e *env) []config.Connector { return []config.Connector{e.oktaConnector("okta")} }

// TestPluginKilledMidLogin kills the connector plugin while it redeems the
// upstream code: that login ends on a clear error page without a session,
// and the next login works (the plugin is launched again).
func TestPluginKilledMidLogin(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var hold atomic.Bool
	e := newEnv(t, envOptions{connectors: oktaOnly, upstream: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/token") && hold.CompareAndSwap(true, false) {
				close(entered)
				<-release
			}
			h.ServeHTTP(w, r)
		})
	}})
	pid := e.pluginPID("okta")

	br := e.browser()
	back := e.upstreamLogin(e.startUpstream(br, spaAuth(), "okta"), "1001")
	hold.Store(true)
	done := make(chan page, 1)
	go func() { done <- br.get(back.String()) }()
	<-entered // the plugin is waiting for the upstream's token answer
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill plugin %d: %v", pid, err)
	}
	p := <-done
	close(release)
	errorPage(t, br, e, p, http.StatusServiceUnavailable, "interrupted")

	claims, _ := e.login(e.browser(), "okta", "1001")
	checkFederated(t, claims, "okta")
	if n := e.fed.Plugin("okta").Restarts(); n != 1 {
		t.Errorf("plugin restarts = %d, want 1", n)
	}
}

// TestRefusedPlugins: a checksum mismatch or a plugin that will not start
// stops federation.New with an error naming the connector, and stops the
// plugins it had launched.
func TestRefusedPlugins(t *testing.T) {
	e := newEnv(t, envOptions{connectors: func(*env) []config.Connector { return nil }})
	ctx := context.Background()
	oidc := pluginPath(t, "connector-oidc")
	good := e.oktaConnector("good")

	bad := e.oktaConnector("okta")
	bad.SHA256 = strings.Repeat("ab", 32)
	_, err := federation.New(ctx, federation.Config{Store: e.store, Issuer: e.issuer, DataKey: e.dataKey, Logger: slog.New(e.logs),
		Connectors: []config.Connector{good, bad}})
	if !errors.Is(err, plugins.ErrChecksumMismatch) || !strings.Contains(err.Error(), `"okta"`) || !strings.Contains(err.Error(), sha256Hex(t, oidc)) {
		t.Errorf("wrong checksum: %v", err)
	}
	pids := e.logs.pluginPIDs("good")
	if len(pids) != 1 {
		t.Fatalf("good plugin pids %v", pids)
	}
	if pid, _ := strconv.Atoi(pids[0]); syscall.Kill(pid, 0) == nil {
		t.Errorf("the plugin launched before the refused one still runs (pid %d)", pid)
	}

	script := filepath.Join(t.TempDir(), "broken-plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'cannot open /etc/acme.conf' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = federation.New(ctx, federation.Config{Store: e.store, Issuer: e.issuer, DataKey: e.dataKey,
		Connectors: []config.Connector{{ID: "acme", Name: "ACME", Path: script}}})
	if err == nil || !strings.Contains(err.Error(), `connector "acme"`) || !strings.Contains(err.Error(), "cannot open /etc/acme.conf") {
		t.Errorf("plugin that does not start: %v", err)
	}

	for _, c := range []config.Connector{{ID: "local", Path: oidc}, {ID: "a/b", Path: oidc}, {ID: "x"}} {
		if _, err := federation.New(ctx, federation.Config{Store: e.store, Issuer: e.issuer, DataKey: e.dataKey,
			Connectors: []config.Connector{c}}); err == nil {
			t.Errorf("connector %+v accepted", c)
		}
	}
	// None of the refused configurations reached the login page.
	if p := e.browser().get(e.authURL(spaAuth())); strings.Contains(p.body, "Continue with") {
		t.Errorf("login page offers a refused connector: %.1500s", p.body)
	}
}

func sha256Hex(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestRefreshGrantRevokedUpstream: with the broker's refresh hook wired to
// Federation.Refresh, a user disabled upstream gets invalid_grant.
func TestRefreshGrantRevokedUpstream(t *testing.T) {
	e := newEnv(t, envOptions{connectors: oktaOnly, brokerConfig: func(e *env, c *broker.Config) {
		c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
	}})
	_, tr := e.login(e.browser(), "okta", "1002")
	next := e.refresh(tr.RefreshToken)
	if next.status != http.StatusOK || next.RefreshToken == "" {
		t.Fatalf("refresh of an active user: %d %s", next.status, next.Error)
	}
	if err := e.idp.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if r := e.refresh(next.RefreshToken); r.status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh of a user disabled upstream: %d %q, want 400 invalid_grant", r.status, r.Error)
	}
}

// TestNodeConnector logs a user in through the Node.js connector of
// testdata/node-connector: connector.proto, not Go, is the contract.
func TestNodeConnector(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "node-connector"))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js")); err != nil {
		missing = "testdata/node-connector/node_modules is missing (run `npm ci --prefix testdata/node-connector`)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI must run the Node connector test", missing)
		}
		t.Skip(missing)
	}
	script := filepath.Join(dir, "connector.js")
	e := newEnv(t, envOptions{
		connectors: func(*env) []config.Connector {
			return []config.Connector{{ID: "node", Name: "Node example", Path: script, SHA256: sha256Hex(t, script), AutoMTLS: new(bool), TrustEmail: true,
				Config: map[string]any{"issuer": "https://node-idp.test", "users": map[string]any{
					"ann":     map[string]any{"sub": "node-ann", "email": "ann@example.test", "name": "Ann"},
					"noemail": map[string]any{"sub": "node-x"},
				}}}}
		},
	})
	br := e.browser()
	ar := spaAuth()
	up := e.startUpstream(br, ar, "node")
	if up.Host != "node-idp.test" {
		t.Fatalf("node connector sent the browser to %s", up)
	}
	// Play the upstream: it sends the browser back with a code.
	cb := e.issuer + "/callback/node?" + url.Values{"code": {"ann"}, "state": {up.Query().Get("state")}}.Encode()
	tr := e.exchange(codeFrom(t, br.get(cb)), ar)
	claims := e.idClaims(tr.IDToken)
	checkFederated(t, claims, "node")
	if claims["email"] != "ann@example.test" || claims["name"] != "Ann" {
		t.Errorf("claims %v", claims)
	}
	if link, err := e.store.GetIdentity(context.Background(), "node", "node-ann"); err != nil || link.UserID != claims["sub"] {
		t.Errorf("identity %+v, %v", link, err)
	}
	// The Node plugin's policy refusal reaches the page with its user
	// message (an ErrorDetail trailer), not its error text.
	br = e.browser()
	up = e.startUpstream(br, spaAuth(), "node")
	cb = e.issuer + "/callback/node?" + url.Values{"code": {"noemail"}, "state": {up.Query().Get("state")}}.Encode()
	p := br.get(cb)
	errorPage(t, br, e, p, http.StatusForbidden, "Add an e-mail address to your account there, then sign in again.")
	if strings.Contains(p.body, "node-x") {
		t.Errorf("the page shows the plugin's error text: %s", p.body)
	}
}

// TestBridgekeeperUpstream: another Bridgekeeper is the upstream of this
// one through connector-oidc (a confidential client registered on it).
func TestBridgekeeperUpstream(t *testing.T) {
	ctx := context.Background()
	e, u := newBridgekeeperUpstream(t, envOptions{})
	br := e.browser(u.host)
	ar := spaAuth()
	ar.params.Set("idp_hint", "bk")
	tr := e.exchange(codeFrom(t, u.signIn(br, br.get(e.authURL(ar)))), ar)
	claims := e.idClaims(tr.IDToken)
	// The upstream Bridgekeeper's ID token says how Uma signed in there
	// (amr ["pwd"]); connector-oidc passes it on after "fed".
	checkFederated(t, claims, "bk", "pwd")
	if claims["email"] != u.email || claims["email_verified"] != true || claims["name"] != "Uma Upstream" {
		t.Errorf("claims %v", claims)
	}
	link, err := e.store.GetIdentity(ctx, "bk", "u_upstream_uma")
	if err != nil || link.UserID != claims["sub"] || !link.EmailVerified {
		t.Errorf("identity %+v, %v", link, err)
	}
	// The upstream's refresh token (offline_access) lets Refresh re-check
	// the user there.
	if err := e.fed.Refresh(ctx, link.UserID, "bk"); err != nil {
		t.Errorf("Refresh through the upstream broker: %v", err)
	}
	after, err := e.store.GetIdentity(ctx, "bk", "u_upstream_uma")
	if err != nil {
		t.Fatal(err)
	}
	before, err := federation.OpenConnectorData(e.fed, link)
	if err != nil {
		t.Fatal(err)
	}
	if now, err := federation.OpenConnectorData(e.fed, after); err != nil || string(now) == string(before) {
		t.Errorf("the upstream broker's rotated refresh token was not kept: %v", err)
	}
}

// bridgekeeperUpstream is another Bridgekeeper serving as the upstream of
// a test broker (connector "bk"), with one local user.
type bridgekeeperUpstream struct {
	issuer, host string
	store        *storage.Store
	email, pw    string
}

// newBridgekeeperUpstream starts a broker with connector "bk" whose
// upstream is another Bridgekeeper (a confidential client registered on
// it, offline access allowed).
func newBridgekeeperUpstream(t *testing.T, o envOptions) (*env, *bridgekeeperUpstream) {
	t.Helper()
	const clientSecret = "downstream-secret-0123456789abcdefghijklmnop"
	ctx := context.Background()
	// The upstream's issuer has a path, so its cookies (same host, other
	// port) do not collide with this broker's in the browser.
	up := httptest.NewUnstartedServer(nil)
	u := &bridgekeeperUpstream{issuer: "http://" + up.Listener.Addr().String() + "/upstream", host: up.Listener.Addr().String(),
		email: "uma@upstream.example", pw: "upstream password 0123"}
	u.store, _ = sqlite().Open(t)
	upStore := u.store

	o.connectors = func(e *env) []config.Connector {
		sec, err := secret.Parse("VVBTVFJFQU0tc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY=")
		if err != nil {
			t.Fatal(err)
		}
		km, err := keys.New(ctx, upStore, keys.Options{EncryptionKey: sec.Derive(secret.PurposeKeyEncryption),
			MaxTokenLifetime: broker.MaxTokenLifetime(broker.Config{})})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := broker.New(ctx, broker.Config{Issuer: u.issuer, Store: upStore, Keys: km, Secret: sec})
		if err != nil {
			t.Fatal(err)
		}
		up.Config.Handler = srv.Handler()
		up.Start()
		t.Cleanup(up.Close)
		hash, err := password.ClientSecretHasher{Key: sec.Derive(secret.PurposeClientSecret)}.Hash(ctx, []byte(clientSecret))
		if err != nil {
			t.Fatal(err)
		}
		if err := upStore.CreateClient(ctx, &storage.Client{
			ID: "downstream", Name: "Downstream broker", SecretHash: hash, TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs: []string{e.issuer + "/callback/bk"}, PostLogoutRedirectURIs: []string{}, AllowedOrigins: []string{},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: []string{"openid", "profile", "email", "offline_access"}, Audiences: []string{}, DefaultAudiences: []string{},
		}); err != nil {
			t.Fatal(err)
		}
		ph, err := password.Hash(u.pw)
		if err != nil {
			t.Fatal(err)
		}
		if err := upStore.CreateUser(ctx, &storage.User{ID: "u_upstream_uma", Email: u.email, EmailVerified: true,
			PasswordHash: ph, Name: "Uma Upstream", Active: true}); err != nil {
			t.Fatal(err)
		}
		return []config.Connector{{ID: "bk", Name: "Upstream Bridgekeeper", Path: pluginPath(t, "connector-oidc"), TrustEmail: true,
			Config: map[string]any{"issuer": u.issuer, "client_id": "downstream", "client_secret": clientSecret}}}
	}
	return newEnv(t, o), u
}

// isLoginPage reports whether p is the upstream broker's login page.
func (u *bridgekeeperUpstream) isLoginPage(p page) bool {
	return p.status == http.StatusOK && strings.HasPrefix(p.url.String(), u.issuer+"/login?login=")
}

// signIn enters the user's password on the upstream broker's login page
// and follows the redirects back through the test broker.
func (u *bridgekeeperUpstream) signIn(br *browser, login page) page {
	br.t.Helper()
	if !u.isLoginPage(login) {
		br.t.Fatalf("expected the upstream's login page, got %d at %s (Location %q)", login.status, login.url, login.header.Get("Location"))
	}
	return br.postForm(u.issuer+"/login", url.Values{"login": {login.url.Query().Get("login")}, "email": {u.email}, "password": {u.pw}})
}

// TestConfigFile reads connectors and the linking policy from a broker
// YAML (testdata/federation/broker.yaml) through internal/config.
func TestConfigFile(t *testing.T) {
	e := newEnv(t, envOptions{connectors: func(e *env) []config.Connector {
		t.Setenv("FED_ISSUER", e.issuer)
		t.Setenv("FED_UPSTREAM", e.idpTS.URL)
		pluginPath(t, "connector-facebook") // built beside connector-oidc, which the file names too
		t.Setenv("FED_PLUGIN_DIR", filepath.Dir(pluginPath(t, "connector-oidc")))
		t.Setenv("FED_CLIENT_SECRET", idpSecret)
		cfg, err := config.Load(filepath.Join("..", "..", "testdata", "federation", "broker.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		e.linkByEmail = cfg.Accounts.LinkByEmail
		for _, c := range cfg.Connectors {
			if want := c.ID != "facebook"; c.TrustEmail != want {
				t.Errorf("connector %s: trust_email %v, want %v", c.ID, c.TrustEmail, want)
			}
		}
		return cfg.Connectors
	}})
	// Both trusted for e-mail (trust_email in the file): alice's okta
	// login joins the user her google login made (link_by_email).
	first, _ := e.login(e.browser(), "google", "1001")
	claims, _ := e.login(e.browser(), "okta", "1001")
	if claims["sub"] != first["sub"] {
		t.Errorf("link_by_email from the file: sub %v, want the google user %v", claims["sub"], first["sub"])
	}
	for _, c := range []struct{ id, subject string }{{"okta", "1002"}, {"facebook", "1002"}} {
		claims, _ := e.login(e.browser(), c.id, c.subject)
		checkFederated(t, claims, c.id)
	}
}

// TestUpstreamTimeout: a provider that does not answer within the
// connector's call_timeout ends the login on a "timed out" page.
func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	var hold atomic.Bool
	e := newEnv(t, envOptions{
		connectors: func(e *env) []config.Connector {
			c := e.oktaConnector("okta")
			c.CallTimeout = 500 * time.Millisecond
			return []config.Connector{c}
		},
		upstream: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/token") && hold.Load() {
					<-release
				}
				h.ServeHTTP(w, r)
			})
		},
	})
	br := e.browser()
	back := e.upstreamLogin(e.startUpstream(br, spaAuth(), "okta"), "1001")
	hold.Store(true)
	p := br.get(back.String())
	hold.Store(false)
	close(release)
	errorPage(t, br, e, p, http.StatusGatewayTimeout, "took too long")
}
