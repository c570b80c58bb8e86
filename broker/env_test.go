package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Fixtures every test environment has.
const (
	spaID         = "spa"                              // public client, PKCE, refresh
	spaRedirect   = "http://127.0.0.1:9999/callback"   // loopback: fosite matches any port
	spaLogout     = "http://127.0.0.1:9999/logged-out" // registered post-logout URI
	spaOrigin     = "http://127.0.0.1:9999"
	apiID         = "api" // confidential client: client_credentials, introspection
	apiSecret     = "api-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	webID         = "web" // confidential client with the code flow
	webSecret     = "web-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	webRedirect   = "https://web.example/callback"
	userEmail     = "alice@example.com"
	userPassword  = "correct horse battery staple"
	disabledEmail = "mallory@example.com"
	inactiveEmail = "bob@example.com"
	otherPassword = "another long password 42"
	testState     = "state-0123456789"
	testNonce     = "nonce-0123456789"
	testSecretB64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	allUserScopes = "openid profile email offline_access"
)

type testEnv struct {
	t       testing.TB
	srv     *Server
	ts      *httptest.Server
	store   *storage.Store
	keys    *keys.Manager
	issuer  string
	user    *storage.User
	backend string
}

// newTestEnv starts a broker on 127.0.0.1 over a fresh store of backend b,
// with the fixture clients and users.
func newTestEnv(t testing.TB, b storagetest.Backend, mod func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvAlg(t, b, "", mod)
}

// newTestEnvAlg is newTestEnv with signing keys of algorithm alg ("" is the
// default, RS256).
func newTestEnvAlg(t testing.TB, b storagetest.Backend, alg string, mod func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	store, _ := b.Open(t)
	sec, err := secret.Parse(testSecretB64)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg := Config{Issuer: issuer, Store: store, Secret: sec}
	if mod != nil {
		mod(&cfg)
	}
	km, err := keys.New(ctx, store, keys.Options{
		Algorithm:        alg,
		EncryptionKey:    sec.Derive(secret.PurposeKeyEncryption),
		MaxTokenLifetime: MaxTokenLifetime(cfg),
	})
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	cfg.Keys = km
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	ts.Config.Handler = srv.Handler()
	if strings.HasPrefix(cfg.Issuer, "https://") {
		ts.StartTLS() // a mod made the issuer https
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	e := &testEnv{t: t, srv: srv, ts: ts, store: store, keys: km, issuer: srv.cfg.Issuer, backend: b.Name}
	e.seed(sec)
	return e
}

func (e *testEnv) seed(sec *secret.System) {
	t := e.t
	ctx := context.Background()
	hasher := password.ClientSecretHasher{Key: sec.Derive(secret.PurposeClientSecret)}
	hash := func(s string) []byte {
		h, err := hasher.Hash(ctx, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	clients := []*storage.Client{
		{
			ID: spaID, Name: "SPA", Public: true, TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{spaRedirect}, PostLogoutRedirectURIs: []string{spaLogout},
			AllowedOrigins: []string{spaOrigin},
			GrantTypes:     []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: strings.Fields(allUserScopes), Audiences: []string{apiID}, DefaultAudiences: []string{apiID},
		},
		{
			ID: apiID, Name: "API", SecretHash: hash(apiSecret), TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"},
			Scopes: []string{"read", "write"}, Audiences: []string{"reports"},
		},
		{
			ID: webID, Name: "Web", SecretHash: hash(webSecret), TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs: []string{webRedirect}, GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
			ResponseTypes: []string{"code"}, Scopes: strings.Fields(allUserScopes),
		},
	}
	for _, c := range clients {
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
	pw, err := password.Hash(userPassword)
	if err != nil {
		t.Fatal(err)
	}
	users := []*storage.User{
		{ID: "u-alice", Email: userEmail, EmailVerified: true, PasswordHash: pw, Name: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell", Active: true},
		{ID: "u-mallory", Email: disabledEmail, PasswordHash: pw, Active: true, Disabled: true},
		{ID: "u-bob", Email: inactiveEmail, PasswordHash: pw, Active: false},
	}
	for _, u := range users {
		if err := e.store.CreateUser(ctx, u); err != nil {
			t.Fatalf("create user %s: %v", u.Email, err)
		}
	}
	e.user = users[0]
}

// forEachBackend runs fn on every storage backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b storagetest.Backend)) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// browser is a user agent with a cookie jar that follows redirects inside
// the broker and stops at the first redirect leaving it.
type browser struct {
	e *testEnv
	c *http.Client
}

func (e *testEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	host := e.ts.Listener.Addr().String()
	return &browser{e: e, c: &http.Client{
		Jar:       jar,
		Transport: e.ts.Client().Transport, // trusts the test server's certificate
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

func readPage(t testing.TB, resp *http.Response, err error) page {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), url: resp.Request.URL}
}

func (b *browser) get(u string) page {
	resp, err := b.c.Get(u)
	return readPage(b.e.t, resp, err)
}

func (b *browser) postForm(u string, form url.Values) page {
	resp, err := b.c.PostForm(u, form)
	return readPage(b.e.t, resp, err)
}

// authRequest is an authorization request with its PKCE verifier.
type authRequest struct {
	params   url.Values
	verifier string
}

func newVerifier() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// spaAuth is a valid authorization request of the public SPA client.
func spaAuth(extra ...string) authRequest {
	v := newVerifier()
	p := url.Values{
		"response_type":         {"code"},
		"client_id":             {spaID},
		"redirect_uri":          {spaRedirect},
		"scope":                 {allUserScopes},
		"state":                 {testState},
		"nonce":                 {testNonce},
		"code_challenge":        {s256(v)},
		"code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			p.Del(extra[i])
		} else {
			p.Set(extra[i], extra[i+1])
		}
	}
	return authRequest{params: p, verifier: v}
}

func (e *testEnv) authURL(ar authRequest) string {
	return e.issuer + pathAuth + "?" + ar.params.Encode()
}

var loginIDRe = regexp.MustCompile(`name="login" value="([^"]+)"`)

// loginID extracts the pending login id from a login page.
func loginID(t testing.TB, p page) string {
	t.Helper()
	m := loginIDRe.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("not a login page (status %d): %.300s", p.status, p.body)
	}
	return m[1]
}

// submitLogin posts the login form of page p.
func (b *browser) submitLogin(p page, email, pw string) page {
	return b.postForm(b.e.issuer+pathLogin, url.Values{"login": {loginID(b.e.t, p)}, "email": {email}, "password": {pw}})
}

// redirectParams returns the query of a redirect to the client.
func redirectParams(t testing.TB, p page, wantPrefix string) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("want a redirect to %s, got %d: %.400s", wantPrefix, p.status, p.body)
	}
	loc := p.header.Get("Location")
	if !strings.HasPrefix(loc, wantPrefix) {
		t.Fatalf("redirect to %q, want %s…", loc, wantPrefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// loginForCode runs an authorization request through the login form and
// returns the code.
func (b *browser) loginForCode(ar authRequest) string {
	t := b.e.t
	t.Helper()
	p := b.get(b.e.authURL(ar))
	if p.status != http.StatusOK {
		t.Fatalf("authorize: want the login page, got %d: %.300s", p.status, p.body)
	}
	q := redirectParams(t, b.submitLogin(p, userEmail, userPassword), ar.params.Get("redirect_uri"))
	if q.Get("state") != ar.params.Get("state") {
		t.Fatalf("state %q, want %q", q.Get("state"), ar.params.Get("state"))
	}
	if q.Get("code") == "" {
		t.Fatalf("no code in redirect: %v", q)
	}
	return q.Get("code")
}

// tokenResponse is a token endpoint answer (success or error).
type tokenResponse struct {
	status       int
	header       http.Header
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// post sends a form to a broker endpoint, with Basic auth when user != "".
func (e *testEnv) post(path string, form url.Values, user, pass string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// token posts a token request (header: name, value pairs, as post).
func (e *testEnv) token(form url.Values, user, pass string, header ...string) tokenResponse {
	e.t.Helper()
	resp, body := e.post(pathToken, form, user, pass, header...)
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		e.t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
	}
	tr.status, tr.header = resp.StatusCode, resp.Header
	return tr
}

// exchange trades a code of the SPA client for tokens.
func (e *testEnv) exchange(code string, ar authRequest) tokenResponse {
	return e.token(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {ar.params.Get("redirect_uri")},
		"client_id":     {ar.params.Get("client_id")},
		"code_verifier": {ar.verifier},
	}, "", "")
}

func (e *testEnv) refresh(rt string) tokenResponse {
	return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}}, "", "")
}

func mustOK(t testing.TB, tr tokenResponse) tokenResponse {
	t.Helper()
	if tr.status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("token request failed: %d %s: %s", tr.status, tr.Error, tr.Description)
	}
	return tr
}

func wantTokenError(t testing.TB, tr tokenResponse, status int, code string) {
	t.Helper()
	if tr.status != status || tr.Error != code {
		t.Fatalf("got %d %q (%s), want %d %q", tr.status, tr.Error, tr.Description, status, code)
	}
}

// introspect asks as the api client whether a token is active.
func (e *testEnv) introspect(token string) map[string]any {
	e.t.Helper()
	resp, body := e.post(pathIntrospect, url.Values{"token": {token}}, apiID, apiSecret)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("introspect: %d %s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// active reports whether the broker considers a token (access or refresh)
// active: fosite's introspection, without the HTTP endpoint's per-client
// policy (TestIntrospection covers that).
func (e *testEnv) active(token string) bool {
	_, _, err := e.srv.provider.IntrospectToken(context.Background(), token, fosite.AccessToken, newSession())
	return err == nil
}

// jwks fetches the served key set.
func (e *testEnv) jwks() jose.JSONWebKeySet {
	e.t.Helper()
	resp, err := http.Get(e.issuer + pathJWKS)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		e.t.Fatal(err)
	}
	return set
}

// verifyJWT verifies a JWT against the served JWKS (by kid) and returns its
// header and claims.
func (e *testEnv) verifyJWT(raw string) (jose.Header, map[string]any) {
	e.t.Helper()
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		e.t.Fatalf("parse JWT: %v", err)
	}
	h := tok.Headers[0]
	set := e.jwks()
	keys := set.Key(h.KeyID)
	if h.KeyID == "" || len(keys) != 1 {
		e.t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		e.t.Fatalf("verify JWT: %v", err)
	}
	var std josejwt.Claims
	if err := tok.Claims(keys[0].Key, &std); err != nil {
		e.t.Fatal(err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: e.issuer, Time: time.Now()}, time.Minute); err != nil {
		e.t.Fatalf("JWT claims: %v", err)
	}
	return h, claims
}
