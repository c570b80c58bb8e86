package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuthorizeURL(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	maxAge := 300
	u, err := c.AuthorizeURL(context.Background(), AuthOptions{
		Prompt: "login", MaxAge: &maxAge, IDPHint: "okta", LoginHint: "ada@example.com", ACRValues: "urn:bridgekeeper:acr:mfa",
		Scopes: []string{"profile", "checkout"},
		Extra:  map[string]string{"ui_locales": "de fr", "state": "forged"},
	})
	if err != nil {
		t.Fatal(err)
	}
	base, query, _ := strings.Cut(u, "?")
	if base != e.url+"/oauth2/auth" {
		t.Errorf("endpoint = %s", base)
	}
	q := parseQuery(query)
	want := map[string]string{
		"response_type": "code", "client_id": testClient, "redirect_uri": testRedirect,
		"scope": "openid profile checkout", "code_challenge_method": "S256", "prompt": "login",
		"max_age": "300", "idp_hint": "okta", "login_hint": "ada@example.com", "ui_locales": "de fr",
		"acr_values": "urn:bridgekeeper:acr:mfa",
	}
	for k, v := range want {
		if q[k] != v {
			t.Errorf("%s = %q, want %q", k, q[k], v)
		}
	}
	if len(q["state"]) < 16 || q["state"] == "forged" || len(q["nonce"]) < 16 {
		t.Errorf("state %q / nonce %q too weak or overridden", q["state"], q["nonce"])
	}
	// The challenge is the S256 of the stored verifier.
	pending, _ := c.loadPending(context.Background())
	rec := pending[q["state"]].(map[string]any)
	sum := sha256.Sum256([]byte(str(rec, "verifier")))
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); got != q["code_challenge"] {
		t.Errorf("challenge %s is not S256(verifier) %s", q["code_challenge"], got)
	}
	if str(rec, "nonce") != q["nonce"] {
		t.Error("nonce not stored")
	}
}

func TestLoginCallbackIsIdempotent(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			c := e.client(e.deps())
			ctx := context.Background()
			u, err := c.AuthorizeURL(ctx, AuthOptions{AppState: "/checkout"})
			if err != nil {
				t.Fatal(err)
			}
			cb := e.authorize(u)
			if !c.IsCallback(cb) {
				t.Fatalf("IsCallback(%s) = false", cb)
			}
			v1, err := c.HandleCallback(ctx, cb)
			if err != nil {
				t.Fatal(err)
			}
			if v1.Status != StatusAuthenticated || str(v1.User, "email") != testUser || v1.AppState != "/checkout" {
				t.Fatalf("view = %+v", v1)
			}
			// StrictMode or a reload runs the callback again: same result, no second exchange.
			v2, err := c.HandleCallback(ctx, cb)
			if err != nil {
				t.Fatalf("second callback: %v", err)
			}
			if str(v2.User, "sub") != str(v1.User, "sub") {
				t.Error("second callback returned another user")
			}
			// A new client instance on the same store (the page reloaded) too.
			c2 := e.client(e.deps())
			if _, err := c2.HandleCallback(ctx, cb); err != nil {
				t.Fatalf("callback after reload: %v", err)
			}
			if n := e.issuer.Stats().AuthorizationCodeGrants; n != 1 {
				t.Errorf("code grants = %d, want 1", n)
			}
			if at, err := c.AccessToken(ctx, 0); err != nil || at == "" {
				t.Errorf("AccessToken = %q, %v", at, err)
			}
		})
	}
}

func TestCallbackErrors(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	ctx := context.Background()
	if _, err := c.HandleCallback(ctx, testRedirect+"?code=abc&state=neverissued"); ErrorCode(err) != CodeStateMismatch {
		t.Errorf("unknown state: %v", err)
	}
	if _, err := c.HandleCallback(ctx, testRedirect+"?code=abc"); ErrorCode(err) != CodeStateMismatch {
		t.Errorf("no state: %v", err)
	}
	u, _ := c.AuthorizeURL(ctx, AuthOptions{})
	state := parseQuery(strings.SplitN(u, "?", 2)[1])["state"]
	_, err := c.HandleCallback(ctx, testRedirect+"?error=access_denied&error_description=User+said+no&state="+state)
	if ErrorCode(err) != "access_denied" || !strings.Contains(err.Error(), "User said no") {
		t.Errorf("error callback: %v", err)
	}
	if c.Status() == StatusAuthenticated {
		t.Error("authenticated after an error callback")
	}
}

// The test issuer, like the broker, says it sends iss (RFC 9207): a
// callback without it, or with another issuer's, is refused.
func TestCallbackIssuer(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	ctx := context.Background()
	for name, change := range map[string]func(string) string{
		"missing": func(cb string) string { return strings.Replace(cb, "iss=", "x-iss=", 1) },
		"foreign": func(cb string) string { return strings.Replace(cb, "iss=", "iss=https%3A%2F%2Fevil.example&x=", 1) },
	} {
		u, _ := c.AuthorizeURL(ctx, AuthOptions{})
		cb := e.authorize(u)
		if !strings.Contains(cb, "iss=") {
			t.Fatalf("the test issuer sent no iss: %s", cb)
		}
		if _, err := c.HandleCallback(ctx, change(cb)); ErrorCode(err) != CodeInvalidResponse {
			t.Errorf("%s iss: %v, want %s", name, err, CodeInvalidResponse)
		}
	}
	if c.Status() == StatusAuthenticated {
		t.Error("authenticated from a callback with a bad iss")
	}
	u, _ := c.AuthorizeURL(ctx, AuthOptions{})
	if _, err := c.HandleCallback(ctx, e.authorize(u)); err != nil {
		t.Errorf("callback with the right iss: %v", err)
	}
}

func TestTamperedIDTokenIsRejected(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	ctx := context.Background()
	u, _ := c.AuthorizeURL(ctx, AuthOptions{})
	e.issuer.TamperNextIDToken()
	if _, err := c.HandleCallback(ctx, e.authorize(u)); ErrorCode(err) != CodeInvalidIDToken {
		t.Fatalf("tampered token: %v", err)
	}
	if c.Status() == StatusAuthenticated {
		t.Error("authenticated with a tampered ID token")
	}
	// A wrong nonce is refused too.
	u, _ = c.AuthorizeURL(ctx, AuthOptions{})
	e.issuer.SetNextNonce("someone-elses-nonce")
	if _, err := c.HandleCallback(ctx, e.authorize(u)); ErrorCode(err) != CodeInvalidIDToken {
		t.Fatalf("wrong nonce: %v", err)
	}
}

func TestIDTokenClaims(t *testing.T) {
	e := newEnv(t, "ES256")
	c := e.client(e.deps())
	ctx := context.Background()
	now := e.clock.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"iss": e.url, "aud": testClient, "sub": "u1", "iat": now, "exp": now + 600, "nonce": "n1"}
	}
	cases := []struct {
		name   string
		edit   func(m map[string]any)
		check  idTokenCheck
		wantOK bool
	}{
		{"valid", func(map[string]any) {}, idTokenCheck{nonce: "n1"}, true},
		{"valid within skew", func(m map[string]any) { m["exp"] = now - 30; m["iat"] = now + 30 }, idTokenCheck{}, true},
		{"wrong issuer", func(m map[string]any) { m["iss"] = "https://evil.example" }, idTokenCheck{}, false},
		{"wrong audience", func(m map[string]any) { m["aud"] = "other" }, idTokenCheck{}, false},
		{"several audiences without azp", func(m map[string]any) { m["aud"] = []any{testClient, "api"} }, idTokenCheck{}, false},
		{"several audiences with azp", func(m map[string]any) { m["aud"] = []any{testClient, "api"}; m["azp"] = testClient }, idTokenCheck{}, true},
		{"foreign azp", func(m map[string]any) { m["azp"] = "other" }, idTokenCheck{}, false},
		{"expired", func(m map[string]any) { m["exp"] = now - 120 }, idTokenCheck{}, false},
		{"no exp", func(m map[string]any) { delete(m, "exp") }, idTokenCheck{}, false},
		{"issued in the future", func(m map[string]any) { m["iat"] = now + 600 }, idTokenCheck{}, false},
		{"nonce mismatch", func(m map[string]any) { m["nonce"] = "n2" }, idTokenCheck{nonce: "n1"}, false},
		{"nonce missing", func(m map[string]any) { delete(m, "nonce") }, idTokenCheck{nonce: "n1"}, false},
		{"subject changed on refresh", func(map[string]any) {}, idTokenCheck{subject: "u2"}, false},
		{"no subject", func(m map[string]any) { delete(m, "sub") }, idTokenCheck{}, false},
		{"at_hash mismatch", func(m map[string]any) { m["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }, idTokenCheck{accessToken: "at"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.edit(m)
			tok, err := e.issuer.Sign(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.verifyIDToken(ctx, tok, tc.check)
			if tc.wantOK && err != nil {
				t.Errorf("rejected: %v", err)
			}
			if !tc.wantOK && ErrorCode(err) != CodeInvalidIDToken {
				t.Errorf("accepted or wrong error: %v", err)
			}
		})
	}
	// alg none and an unknown kid never pass.
	tok, _ := e.issuer.Sign(good())
	parts := strings.Split(tok, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
	if _, err := c.verifyIDToken(ctx, none, idTokenCheck{}); ErrorCode(err) != CodeInvalidIDToken {
		t.Errorf("alg none: %v", err)
	}
	otherKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"rotated-away"}`)) + "." + parts[1] + "." + parts[2]
	if _, err := c.verifyIDToken(ctx, otherKid, idTokenCheck{}); ErrorCode(err) != CodeInvalidIDToken {
		t.Errorf("unknown kid: %v", err)
	}
	// A payload swapped under a valid signature fails the signature.
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+e.url+`","aud":"`+testClient+`","sub":"admin","iat":1,"exp":9999999999}`)) + "." + parts[2]
	if _, err := c.verifyIDToken(ctx, forged, idTokenCheck{}); ErrorCode(err) != CodeInvalidIDToken {
		t.Errorf("forged payload: %v", err)
	}
}

func TestConcurrentCallersRefreshOnce(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	e.login(c)
	before, _ := c.AccessToken(context.Background(), 0)
	e.clock.Advance(10 * time.Minute) // the access token has expired

	var wg sync.WaitGroup
	tokens := make([]string, 8)
	errs := make([]error, 8)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens[i], errs[i] = c.AccessToken(context.Background(), 0)
		}()
	}
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil || tokens[i] != tokens[0] || tokens[i] == before {
			t.Fatalf("caller %d: %q, %v (first %q, before %q)", i, tokens[i], errs[i], tokens[0], before)
		}
	}
	if n := e.issuer.Stats().RefreshGrants; n != 1 {
		t.Errorf("refresh grants = %d, want 1", n)
	}
	e.waitEvent(EventTokenRefreshed)
}

// Callers whose token an API refused (401) renew it once between them.
func TestRenewRejectedTokenOnce(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	e.login(c)
	rejected, _ := c.AccessToken(context.Background(), 0)
	var wg sync.WaitGroup
	tokens := make([]string, 6)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Renew(context.Background(), rejected)
			if err != nil {
				t.Error(err)
			}
			tokens[i] = tok
		}()
	}
	wg.Wait()
	for i, tok := range tokens {
		if tok == rejected || tok != tokens[0] {
			t.Errorf("caller %d got %q (first %q, rejected %q)", i, tok, tokens[0], rejected)
		}
	}
	if n := e.issuer.Stats().RefreshGrants; n != 1 {
		t.Errorf("refresh grants = %d, want 1", n)
	}
}

// Two client instances on one store (two tabs with dedicated workers)
// refresh once between them and log out together.
func TestTwoInstancesShareOneRefresh(t *testing.T) {
	e := newEnv(t, "RS256")
	locker := &mutexLocker{}
	b := &bus{}
	var a, c2 *Client
	depsA, depsB := e.deps(), e.deps()
	depsA.Locker, depsB.Locker = locker, locker
	depsA.Broadcaster, depsB.Broadcaster = busEnd{b, &a}, busEnd{b, &c2}
	a = e.client(depsA)
	c2 = e.client(depsB)
	b.clients = []*Client{a, c2}
	ctx := context.Background()

	e.login(a)
	if st, err := c2.Start(ctx); err != nil || st != StatusAuthenticated {
		t.Fatalf("second tab start: %s, %v", st, err)
	}
	e.clock.Advance(10 * time.Minute)
	var wg sync.WaitGroup
	var ta, tb string
	var ea, eb error
	wg.Add(2)
	go func() { defer wg.Done(); ta, ea = a.AccessToken(ctx, 0) }()
	go func() { defer wg.Done(); tb, eb = c2.AccessToken(ctx, 0) }()
	wg.Wait()
	if ea != nil || eb != nil || ta != tb {
		t.Fatalf("tokens %q / %q, errors %v / %v", ta, tb, ea, eb)
	}
	st := e.issuer.Stats()
	if st.RefreshGrants != 1 || st.RefreshRejected != 0 {
		t.Errorf("refresh grants %d, rejected %d; want 1 and 0", st.RefreshGrants, st.RefreshRejected)
	}

	endURL, err := a.Logout(ctx, LogoutOptions{State: "bye1234567"})
	if err != nil {
		t.Fatal(err)
	}
	if c2.Status() != StatusLoginRequired {
		t.Errorf("other tab after logout: %s", c2.Status())
	}
	if _, err := c2.AccessToken(ctx, 0); ErrorCode(err) != CodeLoginRequired {
		t.Errorf("other tab token after logout: %v", err)
	}
	base, query, _ := strings.Cut(endURL, "?")
	q := parseQuery(query)
	if base != e.url+"/oauth2/logout" || q["id_token_hint"] == "" || q["post_logout_redirect_uri"] != testLogout || q["state"] != "bye1234567" {
		t.Errorf("end session URL %s", endURL)
	}
	if n := e.issuer.Stats().Revocations; n < 1 {
		t.Errorf("revocations = %d", n)
	}
}

func TestStartWithRevokedRefreshTokenIsLoginRequired(t *testing.T) {
	e := newEnv(t, "RS256")
	e.login(e.client(e.deps()))
	e.issuer.RevokeAll()
	e.clock.Advance(time.Hour)

	c := e.client(e.deps()) // the page reloads
	st, err := c.Start(context.Background())
	if err != nil || st != StatusLoginRequired {
		t.Fatalf("Start = %s, %v; want login_required and no error", st, err)
	}
	e.waitEvent(EventSessionExpired)
	if _, found, _ := e.store.Load(context.Background(), storeSession); found {
		t.Error("the dead session is still stored")
	}
}

func TestStartWithBrokerDownKeepsSession(t *testing.T) {
	e := newEnv(t, "RS256")
	e.login(e.client(e.deps()))
	e.clock.Advance(time.Hour)
	e.issuer.SetDown(true)

	c := e.client(e.deps())
	st, err := c.Start(context.Background())
	if ErrorCode(err) != CodeBrokerDown || st != StatusAuthenticated {
		t.Fatalf("Start = %s, %v; want authenticated and broker_unavailable", st, err)
	}
	if v := c.View(); v.Error == nil {
		t.Error("view has no error while the broker is down")
	}
	e.issuer.SetDown(false)
	if _, err := c.AccessToken(context.Background(), 0); err != nil {
		t.Fatalf("after the broker is back: %v", err)
	}
	if v := c.View(); v.Error != nil {
		t.Errorf("error not cleared: %v", v.Error)
	}
}

func TestStartFreshSessionNeedsNoNetwork(t *testing.T) {
	e := newEnv(t, "RS256")
	e.login(e.client(e.deps()))
	e.issuer.SetDown(true)
	c := e.client(e.deps())
	if st, err := c.Start(context.Background()); err != nil || st != StatusAuthenticated {
		t.Fatalf("Start = %s, %v", st, err)
	}
	if e.issuer.Stats().RefreshGrants != 0 {
		t.Error("a fresh session was refreshed at start")
	}
}

func TestRefresherRenewsBeforeExpiryAndOnWake(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	e.login(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{})
	done := make(chan struct{})
	go func() { c.RunRefresher(ctx, wake); close(done) }()

	// The refresher arms a timer for expiry minus the margin (60 s of 5 min).
	if d := <-e.clock.timers; d != 4*time.Minute {
		t.Errorf("timer = %v, want 4m", d)
	}
	e.clock.Advance(4 * time.Minute)
	e.waitEvent(EventTokenRefreshed)
	if n := e.issuer.Stats().RefreshGrants; n != 1 {
		t.Fatalf("refresh grants = %d", n)
	}

	// Timers in a background tab may never fire: a wake-up after the
	// deadline refreshes at once. Drain the timers armed so far first.
	for len(e.clock.timers) > 0 {
		<-e.clock.timers
	}
	e.clock.mu.Lock()
	e.clock.now = e.clock.now.Add(10 * time.Minute) // time passes, no timer fires
	e.clock.mu.Unlock()
	wake <- struct{}{}
	e.waitEvent(EventTokenRefreshed)
	if n := e.issuer.Stats().RefreshGrants; n != 2 {
		t.Fatalf("refresh grants after wake = %d", n)
	}
	cancel()
	<-done
}

func TestUserInfo(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	ctx := context.Background()
	if _, err := c.UserInfo(ctx); ErrorCode(err) != CodeLoginRequired {
		t.Errorf("userinfo before login: %v", err)
	}
	e.login(c)
	info, err := c.UserInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if str(info, "email") != testUser {
		t.Errorf("userinfo = %v", info)
	}
}

func TestLogoutRevokesRefreshToken(t *testing.T) {
	e := newEnv(t, "RS256")
	c := e.client(e.deps())
	ctx := context.Background()
	e.login(c)
	rt := c.Session().RefreshToken
	if _, err := c.Logout(ctx, LogoutOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(EventLoggedOut)
	// The revoked refresh token no longer works at the broker.
	if _, err := c.postForm(ctx, e.url+"/oauth2/token", params{{"grant_type", "refresh_token"}, {"refresh_token", rt}, {"client_id", testClient}}); ErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh after logout: %v", err)
	}
	if c.Status() != StatusLoginRequired || c.Session() != nil {
		t.Error("session kept after logout")
	}
}

func TestDiscoveryRejectsForeignIssuer(t *testing.T) {
	e := newEnv(t, "RS256")
	cfg := e.config()
	cfg.Issuer = strings.Replace(e.url, "127.0.0.1", "localhost", 1)
	c, err := New(cfg, e.deps())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Discovery(context.Background()); ErrorCode(err) != CodeInvalidResponse {
		t.Errorf("foreign issuer accepted: %v", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	e := newEnv(t, "RS256")
	for _, edit := range []func(*Config){
		func(c *Config) { c.Issuer = "" },
		func(c *Config) { c.ClientID = "" },
		func(c *Config) { c.RedirectURI = "" },
	} {
		cfg := e.config()
		edit(&cfg)
		if _, err := New(cfg, e.deps()); ErrorCode(err) != CodeConfig {
			t.Errorf("New accepted %+v: %v", cfg, err)
		}
	}
}
