package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/internal/cookie"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestKeyRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		ar := spaAuth()
		before := mustOK(t, e.exchange(br.loginForCode(ar), ar))
		oldKid, _ := e.verifyJWT(before.AccessToken)

		if err := e.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		after := mustOK(t, e.refresh(before.RefreshToken))
		newKid, _ := e.verifyJWT(after.AccessToken)
		if oldKid.KeyID == newKid.KeyID {
			t.Fatal("tokens are still signed by the retired key")
		}
		// After another rotation, tokens signed by the now retired key still
		// verify where the broker checks them itself (introspection,
		// userinfo, id_token_hint): by kid, not only the current key.
		if err := e.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !e.active(after.AccessToken) {
			t.Error("an access token signed by the retired key is no longer active")
		}
		req, _ := http.NewRequest(http.MethodGet, e.issuer+pathUserinfo, nil)
		req.Header.Set("Authorization", "Bearer "+after.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("userinfo with a token of the retired key: %d", resp.StatusCode)
		}
		redirectParams(t, br.get(e.issuer+pathLogout+"?"+url.Values{"id_token_hint": {before.IDToken}, "post_logout_redirect_uri": {spaLogout}}.Encode()), spaLogout)
	})
}

func TestConcurrentCodeExchange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		const n = 8
		results := make([]tokenResponse, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = e.exchange(code, ar)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.Error != "invalid_grant" && r.Error != "invalid_request":
				t.Errorf("loser got %d %s: %s", r.status, r.Error, r.Description)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent exchanges of one code succeeded, want exactly 1", ok, n)
		}
	})
}

func TestConcurrentRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		const n = 8
		results := make([]tokenResponse, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = e.refresh(tr.RefreshToken)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.Error != "invalid_grant" && r.Error != "invalid_request":
				t.Errorf("loser got %d %s: %s", r.status, r.Error, r.Description)
			}
		}
		if ok > 1 {
			t.Fatalf("%d of %d concurrent refreshes of one token succeeded, want at most 1", ok, n)
		}
	})
}

// TestCompleteLoginFromAnotherHandler plays a connector: a login option on
// the login page, idp_hint, a route of its own and CompleteLogin.
func TestCompleteLoginFromAnotherHandler(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		var e *testEnv
		e = newTestEnv(t, b, func(c *Config) {
			c.LoginOptions = []LoginOption{{ID: "fake", Label: "Fake IdP", URL: func(id string) string {
				return c.Issuer + "/connector/fake?login=" + url.QueryEscape(id)
			}}}
			c.LoginLinks = []LoginLink{{Label: "Create account", Href: "/register", WithLogin: true}}
			mount("/connector/fake", func(w http.ResponseWriter, r *http.Request) {
				id := r.URL.Query().Get("login")
				if _, err := e.srv.PendingLogin(r, id); err != nil {
					http.Error(w, "no pending login", http.StatusBadRequest)
					return
				}
				e.srv.CompleteLogin(w, r, id, e.user.ID, "fake", []string{"fed"})
			})(c)
		})

		br := e.browser()
		p := br.get(e.authURL(spaAuth()))
		if !strings.Contains(p.body, "Continue with Fake IdP") || !strings.Contains(p.body, `/register?login=`) {
			t.Fatalf("login page lacks the connector button or the link: %.2000s", p.body)
		}
		// idp_hint skips the login page.
		ar := spaAuth("idp_hint", "fake")
		q := redirectParams(t, br.get(e.authURL(ar)), spaRedirect)
		tr := mustOK(t, e.exchange(q.Get("code"), ar))
		_, id := e.verifyJWT(tr.IDToken)
		if id["idp"] != "fake" {
			t.Errorf("idp %v", id["idp"])
		}
		if amr, _ := id["amr"].([]any); len(amr) != 1 || amr[0] != "fed" {
			t.Errorf("amr %v", id["amr"])
		}
		// Another browser cannot complete this browser's login.
		p = br.get(e.authURL(spaAuth("prompt", "login")))
		other := e.browser()
		r := other.get(e.issuer + "/connector/fake?login=" + url.QueryEscape(loginID(t, p)))
		if r.status != http.StatusBadRequest {
			t.Errorf("foreign browser completed the login: %d", r.status)
		}
	})
}

type fakeLimiter struct {
	mu    sync.Mutex
	calls []string
	deny  bool
}

func (l *fakeLimiter) Allow(_ context.Context, action, account, ip string) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, action+" "+account+" "+ip)
	return !l.deny, 30 * time.Second, nil
}

func TestLoginLimiter(t *testing.T) {
	lim := &fakeLimiter{deny: true}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.LoginLimiter = lim })
	br := e.browser()
	p := br.get(e.authURL(spaAuth()))
	r := br.submitLogin(p, "Alice@Example.com", userPassword)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" {
		t.Fatalf("limited login: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if len(lim.calls) != 1 || lim.calls[0] != "login alice@example.com 127.0.0.1" {
		t.Errorf("limiter calls %q", lim.calls)
	}
}

func TestTemplateDirOverrides(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "logged_out.html"), []byte(`{{template "head" .}}<p>Custom goodbye</p>{{template "foot" .}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.TemplateDir = dir })
	p := e.browser().get(e.issuer + pathLogout)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Custom goodbye") {
		t.Fatalf("override not used: %d %.300s", p.status, p.body)
	}
}

func TestSecureCookiesForHTTPSIssuer(t *testing.T) {
	s := &Server{secure: true, cookies: cookie.For("https://id.example/auth"), basePath: "/auth", cfg: Config{PendingLoginLifetime: time.Minute}}
	rec := httptest.NewRecorder()
	s.browserBinding(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != "__Host-"+bindingCookie || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	good := e.srv.cfg
	for name, mod := range map[string]func(*Config){
		"no issuer":     func(c *Config) { c.Issuer = "" },
		"relative":      func(c *Config) { c.Issuer = "/oauth" },
		"query":         func(c *Config) { c.Issuer = "https://id.example?x=1" },
		"no store":      func(c *Config) { c.Store = nil },
		"no keys":       func(c *Config) { c.Keys = nil },
		"no secret":     func(c *Config) { c.Secret = nil },
		"reuse grace":   func(c *Config) { c.RefreshReuseGrace = time.Hour },
		"bad templates": func(c *Config) { c.TemplateDir = writeBadTemplate(t) },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if got := MaxTokenLifetime(Config{}); got != time.Hour {
		t.Errorf("MaxTokenLifetime of defaults = %v", got)
	}
}

func writeBadTemplate(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login.html"), []byte(`{{if}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLogoutWithoutHintAsksFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		br.loginForCode(spaAuth())
		params := url.Values{"client_id": {spaID}, "post_logout_redirect_uri": {spaLogout}, "state": {"st-1"}}

		p := br.get(e.issuer + pathLogout + "?" + params.Encode())
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm" value="yes"`) || !strings.Contains(p.body, userEmail) {
			t.Fatalf("no confirmation page: %d %.500s", p.status, p.body)
		}
		sessionAlive := func() bool {
			q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
			return q.Get("code") != ""
		}
		if !sessionAlive() {
			t.Fatal("the session ended without confirmation")
		}

		confirm := url.Values{"confirm": {"yes"}}
		for k, v := range params {
			confirm[k] = v
		}
		// A cross-site confirmation is not one.
		req, _ := http.NewRequest(http.MethodPost, e.issuer+pathLogout, strings.NewReader(confirm.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := br.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !sessionAlive() {
			t.Fatalf("cross-site confirmation: %d", resp.StatusCode)
		}

		q := redirectParams(t, br.postForm(e.issuer+pathLogout, confirm), spaLogout)
		if q.Get("state") != "st-1" {
			t.Errorf("state %q", q.Get("state"))
		}
		if sessionAlive() {
			t.Fatal("the session survived a confirmed logout")
		}
	})
}

func TestES256Keys(t *testing.T) {
	e := newTestEnvAlg(t, storagetest.Backend{Name: "sqlite"}, "ES256", nil)
	ar := spaAuth()
	br := e.browser()
	tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
	for _, tok := range []string{tr.IDToken, tr.AccessToken} {
		if h, _ := e.verifyJWT(tok); h.Algorithm != "ES256" {
			t.Errorf("alg %s, want ES256", h.Algorithm)
		}
	}
	if !e.active(tr.AccessToken) {
		t.Error("ES256 access token inactive")
	}
	redirectParams(t, br.get(e.issuer+pathLogout+"?"+url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaLogout}}.Encode()), spaLogout)
	resp, err := http.Get(e.issuer + pathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || len(doc.Algs) != 1 || doc.Algs[0] != "ES256" {
		t.Errorf("discovery algs %v %v", doc.Algs, err)
	}
}

// TestMalformedRequests throws garbage at every endpoint: never a 5xx.
func TestMalformedRequests(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	long := strings.Repeat("A", 5000)
	cases := []struct{ method, path, body, ctype string }{
		{"GET", pathAuth, "", ""},
		{"GET", pathAuth + "?%zz", "", ""},
		{"GET", pathAuth + "?client_id=" + spaID + "&response_type=code&redirect_uri=" + url.QueryEscape(spaRedirect) + "&max_age=-1&state=" + testState, "", ""},
		{"GET", pathAuth + "?client_id=" + spaID + "&response_type=code&redirect_uri=%00&state=" + testState, "", ""},
		{"GET", pathAuth + "?client_id=" + long, "", ""},
		{"POST", pathAuth, "%%%", "application/x-www-form-urlencoded"},
		{"POST", pathToken, "", ""},
		{"POST", pathToken, "grant_type=authorization_code", "application/x-www-form-urlencoded"},
		{"POST", pathToken, "--x\r\n", "multipart/form-data; boundary=x"},
		{"POST", pathToken, "grant_type=refresh_token&refresh_token=a.b.c&client_id=" + spaID, "application/x-www-form-urlencoded"},
		{"POST", pathToken, `{"grant_type":"client_credentials"}`, "application/json"},
		{"POST", pathRevoke, "token=" + long, "application/x-www-form-urlencoded"},
		{"POST", pathToken, "grant_type=client_credentials&x=" + strings.Repeat("y", 100<<10), "application/x-www-form-urlencoded"},
		{"POST", pathIntrospect, "token=" + strings.Repeat("y", 100<<10), "application/x-www-form-urlencoded"},
		{"POST", pathIntrospect, "token=x", "application/x-www-form-urlencoded"},
		{"POST", pathIntrospect, "%%%", "application/x-www-form-urlencoded"},
		{"GET", pathUserinfo, "", ""},
		{"POST", pathUserinfo, "access_token=a.b.c", "application/x-www-form-urlencoded"},
		{"GET", pathLogout + "?id_token_hint=a.b.c", "", ""},
		{"GET", pathLogout + "?id_token_hint=" + long, "", ""},
		{"GET", pathLogout + "?post_logout_redirect_uri=" + url.QueryEscape(spaLogout), "", ""},
		{"GET", pathLogout + "?client_id=nobody&post_logout_redirect_uri=" + url.QueryEscape(spaLogout), "", ""},
		{"POST", pathLogout, "%%%", "application/x-www-form-urlencoded"},
		{"GET", pathLogin, "", ""},
		{"GET", pathLogin + "?login=" + long, "", ""},
		{"POST", pathLogin, "login=x&email=a&password=b", "application/x-www-form-urlencoded"},
		{"POST", pathLogin, strings.Repeat("x=y&", 40000), "application/x-www-form-urlencoded"},
		{"GET", "/nowhere", "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, e.issuer+c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirects
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %.80s: %d", c.method, c.path, resp.StatusCode)
		}
	}
}

func TestIssuerWithPath(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.Issuer += "/auth/" })
	if !strings.HasSuffix(e.issuer, "/auth") {
		t.Fatalf("issuer %q", e.issuer)
	}
	ar := spaAuth()
	br := e.browser()
	tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
	if _, claims := e.verifyJWT(tr.IDToken); claims["iss"] != e.issuer {
		t.Errorf("iss %v", claims["iss"])
	}
	u, _ := url.Parse(e.issuer)
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return
		}
	}
	t.Error("no session cookie under the issuer path")
}

func TestRefreshChecksTheUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		ctx := t.Context()

		u, err := e.store.GetUser(ctx, e.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		u.Name = "Alice Pleasance Liddell"
		if err := e.store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		tr = mustOK(t, e.refresh(tr.RefreshToken))
		if _, id := e.verifyJWT(tr.IDToken); id["name"] != u.Name || id["idp"] != "local" {
			t.Errorf("refreshed ID token has stale claims: %v", id)
		}

		u.Disabled = true
		if err := e.store.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, e.refresh(tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	})
}

func TestLogoutHintValidation(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return e.keys.SigningKey(), nil }}
	hint := func(iss string, exp time.Time) string {
		tok, _, err := signer.Generate(t.Context(), jwt.MapClaims{"iss": iss, "sub": e.user.ID, "aud": []string{spaID}, "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix()}, &jwt.Headers{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	logout := func(h string) page {
		return e.browser().get(e.issuer + pathLogout + "?" + url.Values{"id_token_hint": {h}, "post_logout_redirect_uri": {spaLogout}}.Encode())
	}
	// Expired is fine for logout (the client id comes from its audience).
	redirectParams(t, logout(hint(e.issuer, time.Now().Add(-24*time.Hour))), spaLogout)
	if p := logout(hint("https://other.example", time.Now().Add(time.Hour))); p.status != http.StatusBadRequest {
		t.Errorf("foreign issuer: %d", p.status)
	}
	if p := logout(hint(e.issuer, time.Now().Add(time.Hour)) + "x"); p.status != http.StatusBadRequest {
		t.Errorf("bad signature: %d", p.status)
	}
}

func TestGrantObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) {
		c.GrantObserver = func(grantType, outcome string) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, grantType+" "+outcome)
		}
	})
	mustOK(t, e.token(url.Values{"grant_type": {"client_credentials"}}, apiID, apiSecret))
	e.token(url.Values{"grant_type": {"client_credentials"}}, apiID, "wrong")
	e.token(url.Values{"grant_type": {"password"}}, apiID, apiSecret)
	e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spaID}}, "", "")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"client_credentials ok", "client_credentials invalid_client", "password unsupported_grant_type", "refresh_token invalid_grant"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("observed %q, want %q", seen, want)
	}
}
