package broker

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestPKCENoDowngrade backs SECURITY.md's RFC 9700 §2.1.1/4.8 row: a code
// issued without a challenge cannot be redeemed with a verifier (a
// downgrade would let an attacker who strips the challenge from the
// authorization request pass the token endpoint's PKCE check), a code
// issued with one needs the verifier, and the public client cannot
// authorize without one.
func TestPKCENoDowngrade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()

		// The confidential client without a challenge: a verifier at the
		// token endpoint is refused, and nothing is issued.
		ar := spaAuth("client_id", webID, "redirect_uri", webRedirect, "code_challenge", "", "code_challenge_method", "")
		code := br.loginForCode(ar)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}, "code_verifier": {newVerifier()}}
		tr := e.token(form, webID, webSecret)
		if tr.status != http.StatusBadRequest || tr.Error != "invalid_grant" || !strings.Contains(tr.Description, "PKCE") || tr.AccessToken != "" {
			t.Fatalf("a verifier for a code without a challenge: %d %s (%s), want 400 invalid_grant (PKCE)", tr.status, tr.Error, tr.Description)
		}

		// With a challenge: the code needs its verifier.
		ar = spaAuth("client_id", webID, "redirect_uri", webRedirect)
		code = redirectParams(t, br.get(e.authURL(ar)), webRedirect).Get("code")
		form = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}}
		wantTokenError(t, e.token(form, webID, webSecret), http.StatusBadRequest, "invalid_grant")

		// The public client: no challenge, no code.
		q := redirectParams(t, br.get(e.authURL(spaAuth("code_challenge", "", "code_challenge_method", ""))), spaRedirect)
		if q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Fatalf("the SPA without a challenge: %v", q)
		}
	})
}

// TestLoginReplacesThePlantedSession backs SECURITY.md's attacker 1
// (session fixation): a session cookie planted in the victim's browser
// before the login is never adopted: the login sets a new random value,
// and the planted value signs no one in. A new login in a browser also ends
// the browser's previous session.
func TestLoginReplacesThePlantedSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		u, _ := url.Parse(e.issuer)
		sessionValue := func(br *browser) string {
			for _, c := range br.c.Jar.Cookies(u) {
				if c.Name == sessionCookie {
					return c.Value
				}
			}
			return ""
		}
		withSession := func(v string) *browser {
			br := e.browser()
			br.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: v, Path: "/"}})
			return br
		}
		silent := func(br *browser) url.Values {
			return redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
		}

		const planted = "attacker-chosen-session-value-0123456789"
		victim := withSession(planted)
		victim.loginForCode(spaAuth())
		got := sessionValue(victim)
		if got == "" || got == planted {
			t.Fatalf("after the login the session cookie is %q: the planted value was kept", got)
		}
		if q := silent(withSession(planted)); q.Get("error") != "login_required" {
			t.Fatalf("the planted value after the victim's login: %v, want login_required", q)
		}
		if q := silent(withSession(got)); q.Get("code") == "" {
			t.Fatalf("the victim's own session: %v", q)
		}

		// A second login in the same browser ends the first session.
		p := victim.get(e.authURL(spaAuth("prompt", "login")))
		redirectParams(t, victim.submitLogin(p, userEmail, userPassword), spaRedirect)
		second := sessionValue(victim)
		if second == got {
			t.Fatal("a new login kept the session value")
		}
		if q := silent(withSession(got)); q.Get("error") != "login_required" {
			t.Errorf("the browser's previous session after a new login: %v, want login_required", q)
		}
	})
}

// TestHSTSOnHTTPSIssuers backs SECURITY.md's attacker 3: an https issuer's
// pages carry Strict-Transport-Security; a plain http (loopback
// development) issuer sends none.
func TestHSTSOnHTTPSIssuers(t *testing.T) {
	sqlite := storagetest.Backend{Name: "sqlite"}
	secure := newTestEnv(t, sqlite, func(c *Config) { c.Issuer = strings.Replace(c.Issuer, "http://", "https://", 1) })
	if p := secure.browser().get(secure.authURL(spaAuth())); p.status != http.StatusOK ||
		!strings.HasPrefix(p.header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("https issuer's login page: %d, Strict-Transport-Security %q", p.status, p.header.Get("Strict-Transport-Security"))
	}
	plain := newTestEnv(t, sqlite, nil)
	if p := plain.browser().get(plain.authURL(spaAuth())); p.header.Get("Strict-Transport-Security") != "" {
		t.Errorf("http issuer sends Strict-Transport-Security %q", p.header.Get("Strict-Transport-Security"))
	}
}

// TestAccessTokenLifetimeAndAudience backs SECURITY.md's attacker 4 and
// RFC 9700 §4.9: by default an access token lives 15 minutes and names its
// audience, and a refreshed one likewise.
func TestAccessTokenLifetimeAndAudience(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	ar := spaAuth()
	tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
	for name, tok := range map[string]tokenResponse{"issued": tr, "refreshed": mustOK(t, e.refresh(tr.RefreshToken))} {
		if tok.ExpiresIn < 895 || tok.ExpiresIn > 900 {
			t.Errorf("%s: expires_in %d, want 900", name, tok.ExpiresIn)
		}
		_, at := e.verifyJWT(tok.AccessToken)
		exp, _ := at["exp"].(float64)
		iat, _ := at["iat"].(float64)
		// exp and iat are read from the clock a moment apart and each
		// truncated to the second: they may straddle a second's edge.
		if d := exp - iat; d < 899 || d > 901 {
			t.Errorf("%s: exp - iat = %v s, want 900 (±1)", name, d)
		}
		if aud, _ := at["aud"].([]any); len(aud) != 1 || aud[0] != apiID {
			t.Errorf("%s: aud %v, want [%s]", name, at["aud"], apiID)
		}
	}
}

// TestLogoutRedirectMatching backs SECURITY.md's RFC 9700 §4.1 row: a
// post_logout_redirect_uri must be registered for the client the verified
// id_token_hint names, byte for byte, with no loopback port exception and
// no userinfo; anything else is an error page, no redirect, and the
// session lives on.
func TestLogoutRedirectMatching(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		ar := spaAuth()
		tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
		for name, params := range map[string]url.Values{
			"loopback, other port":    {"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {"http://127.0.0.1:1234/logged-out"}},
			"userinfo":                {"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {"http://evil@127.0.0.1:9999/logged-out"}},
			"percent-encoded path":    {"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {"http://127.0.0.1:9999/%6Cogged-out"}},
			"added query":             {"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaLogout + "?x=1"}},
			"the redirect URI":        {"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaRedirect}},
			"hint for another client": {"id_token_hint": {tr.IDToken}, "client_id": {webID}, "post_logout_redirect_uri": {spaLogout}},
			"client_id, no hint":      {"client_id": {webID}, "post_logout_redirect_uri": {spaLogout}},
			"no client at all":        {"post_logout_redirect_uri": {spaLogout}},
		} {
			p := br.get(e.issuer + pathLogout + "?" + params.Encode())
			if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
				t.Errorf("%s: %d Location %q, want 400 and no redirect", name, p.status, p.header.Get("Location"))
			}
		}
		if q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect); q.Get("code") == "" {
			t.Fatalf("the session did not survive the refused logouts: %v", q)
		}
		// The registered URI, exactly: the redirect.
		q := redirectParams(t, br.get(e.issuer+pathLogout+"?"+url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaLogout}}.Encode()), spaLogout)
		if len(q) != 0 {
			t.Errorf("logout redirect carries %v", q)
		}
	})
}

// TestNonceNeedsEntropy backs SECURITY.md's RFC 9700 §2.1.1 row: a nonce
// shorter than 8 characters is refused before the login, and the nonce
// sent is the ID token's.
func TestNonceNeedsEntropy(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	br := e.browser()
	q := redirectParams(t, br.get(e.authURL(spaAuth("nonce", "1234567"))), spaRedirect)
	if q.Get("error") != "insufficient_entropy" || q.Get("code") != "" {
		t.Fatalf("a 7-character nonce: %v, want insufficient_entropy", q)
	}
	ar := spaAuth("nonce", "12345678")
	tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
	if _, id := e.verifyJWT(tr.IDToken); id["nonce"] != "12345678" {
		t.Errorf("ID token nonce %v", id["nonce"])
	}
}

// TestCodeLifetime backs SECURITY.md's RFC 9700 §4.3 row: a code lives 2
// minutes by default (tokens.authorize_code_lifetime), and an expired code
// is invalid_grant.
func TestCodeLifetime(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	br := e.browser()
	br.loginForCode(spaAuth())
	codes := storagetest.AuthorizeCodes(t, e.store)
	if len(codes) != 1 {
		t.Fatalf("%d authorization codes stored, want 1", len(codes))
	}
	if d := codes[0].ExpiresAt.Sub(codes[0].RequestedAt); d < 2*time.Minute || d > 2*time.Minute+30*time.Second { // requested_at is the authorization request
		t.Errorf("a code lives %v, want 2m", d)
	}

	short := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.AuthorizeCodeLifetime = time.Second })
	ar := spaAuth()
	code := short.browser().loginForCode(ar)
	time.Sleep(1500 * time.Millisecond)
	wantTokenError(t, short.exchange(code, ar), http.StatusBadRequest, "invalid_grant")
}

// TestRefreshDeactivatesTheOldAccessToken backs docs/broker.md ("every use
// rotates the refresh token and deactivates the access token issued with
// it"): after a refresh the previous access token no longer introspects
// as active, and the new one does.
func TestRefreshDeactivatesTheOldAccessToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		if m := e.introspect(first.AccessToken); m["active"] != true {
			t.Fatalf("the first access token before the refresh: %v", m)
		}
		second := mustOK(t, e.refresh(first.RefreshToken))
		if m := e.introspect(first.AccessToken); m["active"] != false {
			t.Errorf("the first access token after the refresh: %v, want inactive", m)
		}
		if m := e.introspect(second.AccessToken); m["active"] != true {
			t.Errorf("the new access token: %v", m)
		}
	})
}

// TestAccountStateToldOnlyAfterThePassword backs docs/broker.md's login
// form: a disabled or not yet activated account is named as such (403)
// only to whoever typed its password; a wrong password gets the answer of
// an unknown address.
func TestAccountStateToldOnlyAfterThePassword(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	br := e.browser()
	p := br.get(e.authURL(spaAuth()))
	unknown := br.submitLogin(p, "nobody@example.com", "wrong password!")
	for _, email := range []string{disabledEmail, inactiveEmail} {
		r := br.submitLogin(p, email, "wrong password!")
		if r.status != http.StatusUnauthorized || strings.Contains(r.body, "disabled") || strings.Contains(r.body, "not activated") {
			t.Errorf("%s with a wrong password: %d, want 401 without the account's state", email, r.status)
		}
		msg := func(p page) string { i := strings.Index(p.body, `role="alert"`); return p.body[i : i+80] }
		if msg(r) != msg(unknown) {
			t.Errorf("%s with a wrong password: %q, an unknown address %q", email, msg(r), msg(unknown))
		}
	}
}

// TestIssuerIgnoresHost backs docs/ops.md and SECURITY.md (RFC 9700
// §4.13): the issuer and every endpoint URL come from the configuration,
// never from the request's Host or X-Forwarded-Host: discovery asked with
// another host still names the configured issuer, and so does a token.
func TestIssuerIgnoresHost(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	req, _ := http.NewRequest(http.MethodGet, e.issuer+pathDiscovery, nil)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	for k, v := range doc {
		if s, ok := v.(string); ok && strings.Contains(s, "evil.example") {
			t.Errorf("discovery %s = %q: taken from the request", k, s)
		}
	}
	if doc["issuer"] != e.issuer || doc["token_endpoint"] != e.issuer+pathToken {
		t.Errorf("discovery issuer %v, token endpoint %v; want %s", doc["issuer"], doc["token_endpoint"], e.issuer)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	req, _ = http.NewRequest(http.MethodPost, e.issuer+pathToken, strings.NewReader(form.Encode()))
	req.Host = "evil.example"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(apiID, apiSecret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tr tokenResponse
	_ = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if _, at := e.verifyJWT(tr.AccessToken); at["iss"] != e.issuer {
		t.Errorf("a token asked for with another Host has iss %v", at["iss"])
	}
}
