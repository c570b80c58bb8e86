package federation_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail/mailtest"
	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const (
	spaID         = "spa"
	spaRedirect   = "http://127.0.0.1:9999/callback"
	testSecretB64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	idpClient     = "bridgekeeper"
	idpSecret     = "bridgekeeper-secret"
	userScopes    = "openid profile email offline_access"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// pluginPath returns the path of a plugin binary of this repository
// (connector-oidc, connector-facebook, or the plugins package's
// testconnector and hostileconnector), built once per test process.
func pluginPath(t testing.TB, name string) string {
	t.Helper()
	pkg := "./cmd/" + name
	if name == "testconnector" || name == "hostileconnector" {
		pkg = "./plugins/internal/" + name
	}
	return testenv.Binary(t, pkg)
}

// env is a broker with federation over a fake upstream, all on 127.0.0.1.
type env struct {
	t       testing.TB
	srv     *broker.Server
	ts      *httptest.Server
	store   *storage.Store
	dsn     string
	issuer  string
	fed     *federation.Federation
	idp     *fakeidp.Server
	idpTS   *httptest.Server
	logs    *logSink
	brokerC broker.Config
	// linkByEmail may be set by envOptions.connectors (from a config file).
	linkByEmail bool
	// smtp receives the account e-mails (envOptions.accounts).
	smtp *mailtest.Server
	// dataKey encrypts connector data (federation.Config.DataKey).
	dataKey []byte
}

type envOptions struct {
	backend     storagetest.Backend
	linkByEmail bool
	// accounts mounts the local-account pages (registration, activation,
	// reset) as serve does, mailing through a loopback SMTP server.
	accounts bool
	// connectors to configure; nil means okta, google and facebook.
	connectors func(e *env) []config.Connector
	// brokerConfig adjusts the broker's configuration.
	brokerConfig func(e *env, c *broker.Config)
	// upstream wraps the fake IdP's handler, brokerHandler the broker's.
	upstream      func(http.Handler) http.Handler
	brokerHandler func(http.Handler) http.Handler
	// https serves the broker over TLS with an https issuer.
	https bool
	// recheckInterval, when set, is federation.Config.RecheckInterval.
	recheckInterval *time.Duration
	// idp adjusts the fake upstream's configuration.
	idp func(*fakeidp.Config)
	// fedStore, when set, is the store federation uses (wrapping the
	// broker's).
	fedStore func(*storage.Store) federation.Store
}

func sqlite() storagetest.Backend { return storagetest.Backend{Name: storage.DialectSQLite} }

// newEnv starts a fake upstream and a broker with federation.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	if o.backend.Name == "" {
		o.backend = sqlite()
	}
	store, dsn := o.backend.Open(t)
	ts := httptest.NewUnstartedServer(nil)
	e := &env{t: t, ts: ts, store: store, dsn: dsn, issuer: "http://" + ts.Listener.Addr().String(), logs: &logSink{}}
	if o.https {
		e.issuer = "https://" + ts.Listener.Addr().String()
	}

	cfg := fakeidp.DemoConfig()
	var redirects []string
	for _, id := range []string{"okta", "google", "facebook", "okta2"} {
		redirects = append(redirects, e.issuer+"/callback/"+id)
	}
	cfg.Clients = []fakeidp.Client{{ID: idpClient, Secret: idpSecret, RedirectURIs: redirects}}
	if o.idp != nil {
		o.idp(&cfg)
	}
	idp, err := fakeidp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	var h http.Handler = idp
	if o.upstream != nil {
		h = o.upstream(h)
	}
	e.idpTS = httptest.NewServer(h)
	t.Cleanup(e.idpTS.Close)

	sec, err := secret.Parse(testSecretB64)
	if err != nil {
		t.Fatal(err)
	}
	e.dataKey = sec.Derive(secret.PurposeConnectorData)
	conns := e.defaultConnectors()
	if o.connectors != nil {
		conns = o.connectors(e)
	}
	var fedStore federation.Store = store
	if o.fedStore != nil {
		fedStore = o.fedStore(store)
	}
	fc := federation.Config{
		Store: fedStore, Logger: slog.New(e.logs), Issuer: e.issuer,
		LinkByEmail: o.linkByEmail || e.linkByEmail, Connectors: conns,
		DataKey: e.dataKey,
	}
	if o.recheckInterval != nil {
		fc.RecheckInterval = *o.recheckInterval
		if fc.RecheckInterval == 0 {
			fc.RecheckInterval = -1 // every silent reuse
		}
	}
	e.fed, err = federation.New(ctx, fc)
	if err != nil {
		t.Fatalf("federation.New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.fed.Close(); err != nil {
			t.Errorf("federation.Close: %v", err)
		}
	})
	// The broker gets federation's parts as serve gives them (the refresh
	// re-check only when a test asks for it, in brokerConfig).
	bc := broker.Config{Issuer: e.issuer, Store: store, Secret: sec, Logger: slog.New(e.logs),
		LoginOptions: e.fed.LoginOptions(), SessionCheck: e.fed.SessionCheck, Mounts: []broker.Mount{e.fed.Mount}}
	if o.brokerConfig != nil {
		o.brokerConfig(e, &bc)
	}
	if o.accounts {
		e.withAccounts(&bc) // after brokerConfig: the pages take the broker's settings
	}
	km, err := keys.New(ctx, store, keys.Options{
		EncryptionKey:    sec.Derive(secret.PurposeKeyEncryption),
		MaxTokenLifetime: broker.MaxTokenLifetime(bc),
	})
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	bc.Keys = km
	e.brokerC = bc
	e.srv, err = broker.New(ctx, bc)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	ts.Config.Handler = e.srv.Handler()
	if o.brokerHandler != nil {
		ts.Config.Handler = o.brokerHandler(ts.Config.Handler)
	}
	if o.https {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(ts.Close) // before the plugins stop (cleanups run last in, first out)
	e.seedClient(sec)
	return e
}

// withAccounts serves the local-account pages beside the broker's, as
// serve does.
func (e *env) withAccounts(bc *broker.Config) {
	e.smtp = mailtest.Start(e.t, mailtest.Options{})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: e.smtp.Host, Port: e.smtp.Port, TLS: mail.TLSNone, From: "Bridgekeeper <no-reply@example.test>"})
	if err != nil {
		e.t.Fatal(err)
	}
	svc, err := accounts.New(accounts.Config{
		Store: e.store, Logger: slog.New(e.logs), Issuer: e.issuer, Mailer: m,
		AllowRegistration: true, RequireActivation: true, MinResponseTime: time.Millisecond,
		AccessTokenLifetime: broker.AccessTokenLifetime(*bc),
		Theme:               bc.Theme, // one theme for every page, as serve wires cfg.UI
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { svc.Close() })
	bc.Mounts = append(bc.Mounts, func(r *mux.Router, s *broker.Server) error {
		svc.Routes(r, s)
		return nil
	})
	bc.AccountPages = broker.AccountPages{Account: svc.AccountURL(""), Resend: svc.ResendURL("")}
	bc.LoginLimiter = svc.Limiter()
}

func (e *env) defaultConnectors() []config.Connector {
	return []config.Connector{
		e.oktaConnector("okta"),
		{ID: "google", Name: "Google", Path: pluginPath(e.t, "connector-oidc"), TrustEmail: true, Config: map[string]any{
			"preset": "google", "issuer": e.idpTS.URL, "client_id": idpClient, "client_secret": idpSecret,
		}},
		{ID: "facebook", Name: "Facebook", Path: pluginPath(e.t, "connector-facebook"), Config: map[string]any{
			"client_id": idpClient, "client_secret": idpSecret, "dialog_url": e.idpTS.URL, "graph_url": e.idpTS.URL,
		}},
	}
}

// testConnectorOnly configures the SDK's test plugin (an "old" plugin: it
// declares no capability to force a sign-in upstream) as connector "test".
func testConnectorOnly(e *env) []config.Connector {
	return []config.Connector{{ID: "test", Name: "Test", Path: pluginPath(e.t, "testconnector"),
		Config: map[string]any{"issuer": e.idpTS.URL}}}
}

func (e *env) oktaConnector(id string) config.Connector {
	return config.Connector{ID: id, Name: "Okta", Path: pluginPath(e.t, "connector-oidc"), TrustEmail: true, Config: map[string]any{
		"preset": "okta", "domain": "example.okta.com", "issuer": e.idpTS.URL + "/oauth2/default",
		"client_id": idpClient, "client_secret": idpSecret,
	}}
}

func (e *env) seedClient(sec *secret.System) {
	err := e.store.CreateClient(context.Background(), &storage.Client{
		ID: spaID, Name: "SPA", Public: true, TokenEndpointAuthMethod: "none",
		RedirectURIs: []string{spaRedirect}, PostLogoutRedirectURIs: []string{}, AllowedOrigins: []string{},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: strings.Fields(userScopes + " groups"), Audiences: []string{}, DefaultAudiences: []string{},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	_ = sec
}

// createLocalUser adds a broker user with a password.
func (e *env) createLocalUser(email string, verified bool) *storage.User {
	e.t.Helper()
	pw, err := password.Hash("local password 0123")
	if err != nil {
		e.t.Fatal(err)
	}
	u := &storage.User{ID: "u_local_" + strings.ReplaceAll(email, "@", "_"), Email: email, EmailVerified: verified,
		PasswordHash: pw, Name: "Local " + email, Active: true}
	if err := e.store.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is a user agent with cookies. It follows redirects within the
// hosts it trusts (the broker's) and stops at any other.
type browser struct {
	t     testing.TB
	c     *http.Client
	hosts map[string]bool
}

func (e *env) browser(extraHosts ...string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: e.t, hosts: map[string]bool{e.ts.Listener.Addr().String(): true}}
	for _, h := range extraHosts {
		b.hosts[h] = true
	}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: e.ts.Client().Transport, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if !b.hosts[req.URL.Host] {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

// location is where a redirect page points.
func (p page) location(t testing.TB) *url.URL {
	t.Helper()
	loc := p.header.Get("Location")
	if loc == "" {
		t.Fatalf("expected a redirect, got %d at %s: %.1500s", p.status, p.url, p.body)
	}
	u, err := p.url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body), url: resp.Request.URL}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) postForm(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// cookie returns the value of a cookie the browser would send to u.
func (b *browser) cookie(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range b.c.Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// authRequest is an authorization request of the SPA with its PKCE verifier.
type authRequest struct {
	params   url.Values
	verifier string
}

func spaAuth(extra ...string) authRequest {
	v := rand.Text() + rand.Text()
	h := sha256.Sum256([]byte(v))
	p := url.Values{
		"response_type": {"code"}, "client_id": {spaID}, "redirect_uri": {spaRedirect},
		"scope": {userScopes}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		p.Set(extra[i], extra[i+1])
	}
	return authRequest{params: p, verifier: v}
}

func (e *env) authURL(ar authRequest) string { return e.issuer + "/oauth2/auth?" + ar.params.Encode() }

// startUpstream runs an authorization request with idp_hint=connector and
// returns the upstream login URL the broker sends the browser to.
func (e *env) startUpstream(b *browser, ar authRequest, connector string) *url.URL {
	e.t.Helper()
	ar.params.Set("idp_hint", connector)
	p := b.get(e.authURL(ar))
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		e.t.Fatalf("authorize with idp_hint=%s: %d at %s: %.1500s", connector, p.status, p.url, p.body)
	}
	return p.location(e.t)
}

// upstreamLogin logs subject in at the fake upstream and returns the
// callback URL it sends the browser back to.
func (e *env) upstreamLogin(upstream *url.URL, subject string) *url.URL {
	e.t.Helper()
	back, err := fakeidp.Login(context.Background(), upstream.String(), subject)
	if err != nil {
		e.t.Fatalf("upstream login: %v", err)
	}
	return back
}

// codeFrom checks that a page redirects to the SPA with a code and the
// SPA's state and returns the code.
func codeFrom(t testing.TB, p page) string {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("expected a redirect to the client, got %d at %s: %.1500s", p.status, p.url, p.body)
	}
	u := p.location(t)
	if got := u.Scheme + "://" + u.Host + u.Path; got != spaRedirect {
		t.Fatalf("redirected to %s, want %s", u, spaRedirect)
	}
	q := u.Query()
	if q.Get("error") != "" || q.Get("code") == "" || q.Get("state") != "state-0123456789" {
		t.Fatalf("authorization response %s", u.RawQuery)
	}
	return q.Get("code")
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	status       int
}

func (e *env) postToken(form url.Values) tokens {
	e.t.Helper()
	resp, err := http.PostForm(e.issuer+"/oauth2/token", form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokens
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		e.t.Fatalf("token response: %v", err)
	}
	tr.status = resp.StatusCode
	return tr
}

func (e *env) exchange(code string, ar authRequest) tokens {
	e.t.Helper()
	tr := e.postToken(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaRedirect},
		"client_id": {spaID}, "code_verifier": {ar.verifier},
	})
	if tr.status != http.StatusOK || tr.IDToken == "" {
		e.t.Fatalf("code exchange: %d %s", tr.status, tr.Error)
	}
	return tr
}

func (e *env) refresh(rt string) tokens {
	e.t.Helper()
	return e.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}})
}

// idClaims verifies an ID token against the broker's JWKS and returns its
// claims.
func (e *env) idClaims(token string) map[string]any {
	e.t.Helper()
	resp, err := http.Get(e.issuer + "/.well-known/jwks.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		e.t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		e.t.Fatalf("parse ID token: %v", err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		e.t.Fatalf("ID token kid %q not in the JWKS", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		e.t.Fatalf("verify ID token: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		e.t.Fatal(err)
	}
	if claims["iss"] != e.issuer {
		e.t.Errorf("iss %v", claims["iss"])
	}
	return claims
}

// login runs a whole federated login through connector for the upstream
// subject and returns the tokens' ID token claims and the tokens.
func (e *env) login(b *browser, connector, subject string) (map[string]any, tokens) {
	e.t.Helper()
	ar := spaAuth()
	back := e.upstreamLogin(e.startUpstream(b, ar, connector), subject)
	tr := e.exchange(codeFrom(e.t, b.get(back.String())), ar)
	return e.idClaims(tr.IDToken), tr
}

// checkFederated checks the idp and amr claims of a federated login.
func checkFederated(t testing.TB, claims map[string]any, connector string, upstreamAMR ...string) {
	t.Helper()
	if claims["idp"] != connector {
		t.Errorf("idp = %v, want %s", claims["idp"], connector)
	}
	want := append([]string{"fed"}, upstreamAMR...)
	amr, _ := claims["amr"].([]any)
	if got := fmt.Sprint(amr); got != fmt.Sprint(want) {
		t.Errorf("amr = %v, want %v", claims["amr"], want)
	}
}

// errorPage checks that p is the federation's error page with status and
// a message containing want, and that the browser holds no session.
func errorPage(t testing.TB, b *browser, e *env, p page, status int, want string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, want) {
		t.Errorf("got %d, want %d with %q: %.1500s", p.status, status, want, p.body)
	}
	if loc := p.header.Get("Location"); loc != "" {
		t.Errorf("error answer redirects to %s", loc)
	}
	if v := b.cookie(e.issuer+"/", "bk_session"); v != "" {
		t.Errorf("the browser got a session cookie")
	}
}

var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

// hrefs lists the links of a page, HTML-unescaped.
func hrefs(body string) []string {
	var out []string
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	return out
}

// logSink records log records (for the plugins' pids) and drops them.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.attrs) > 0 {
		r.AddAttrs(s.attrs...)
	}
	s.records = append(s.records, r)
	return nil
}

func (s *logSink) WithAttrs(as []slog.Attr) slog.Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &logChild{parent: s, attrs: append(append([]slog.Attr{}, s.attrs...), as...)}
}

func (s *logSink) WithGroup(string) slog.Handler { return s }

type logChild struct {
	parent *logSink
	attrs  []slog.Attr
}

func (c *logChild) Enabled(context.Context, slog.Level) bool { return true }
func (c *logChild) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(c.attrs...)
	return c.parent.Handle(ctx, r)
}
func (c *logChild) WithAttrs(as []slog.Attr) slog.Handler {
	return &logChild{parent: c.parent, attrs: append(append([]slog.Attr{}, c.attrs...), as...)}
}
func (c *logChild) WithGroup(string) slog.Handler { return c }

// pluginPID is the pid of the only process of a connector's plugin
// launched so far.
func (e *env) pluginPID(connector string) int {
	e.t.Helper()
	pids := e.logs.pluginPIDs(connector)
	if len(pids) != 1 {
		e.t.Fatalf("plugin pids of %s: %v, want one", connector, pids)
	}
	pid, err := strconv.Atoi(pids[0])
	if err != nil {
		e.t.Fatal(err)
	}
	return pid
}

// pluginPIDs returns the pids of the "connector plugin started" records
// of a connector, oldest first.
func (s *logSink) pluginPIDs(connector string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []string
	for _, r := range s.records {
		if r.Message != "connector plugin started" {
			continue
		}
		var conn, pid string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "connector":
				conn = a.Value.String()
			case "pid":
				pid = a.Value.String()
			}
			return true
		})
		if conn == connector {
			pids = append(pids, pid)
		}
	}
	return pids
}
