package federation_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// An upstream that keeps its own sign-in session (fakeidp does, like Okta,
// Google and Dex) must not let the broker claim a fresh login that never
// happened, and a user the upstream no longer accepts must lose the broker
// session and every grant that came from that identity.

// idpBrowser is a browser that follows redirects to the fake upstream too,
// so it keeps the upstream's own sign-in cookie.
func (e *env) idpBrowser() *browser {
	return e.browser(e.idpTS.Listener.Addr().String())
}

// authorize runs an authorization request in b and returns where it ends:
// the upstream's login page (200), or the redirect to the client.
func (e *env) authorize(b *browser, ar authRequest) page {
	e.t.Helper()
	return b.get(e.authURL(ar))
}

// isUpstreamLoginPage reports whether p is the fake upstream's login form.
func (e *env) isUpstreamLoginPage(p page) bool {
	return p.status == http.StatusOK && p.url.Host == e.idpTS.Listener.Addr().String() &&
		strings.Contains(p.body, `name="subject"`)
}

// enterCredential signs subject in on the upstream login page p (in the
// browser b, so the upstream's session cookie is set) and follows the
// redirects back through the broker to the client.
func (e *env) enterCredential(b *browser, p page, subject string) page {
	e.t.Helper()
	if !e.isUpstreamLoginPage(p) {
		e.t.Fatalf("expected the upstream login page, got %d at %s: %.800s", p.status, p.url, p.body)
	}
	form := p.url.Query()
	form.Set("subject", subject)
	action := *p.url
	action.RawQuery = ""
	return b.postForm(action.String(), form)
}

// authTime is the auth_time claim of an ID token.
func (e *env) authTime(idToken string) time.Time {
	e.t.Helper()
	v, ok := e.idClaims(idToken)["auth_time"].(float64)
	if !ok {
		e.t.Fatal("ID token without auth_time")
	}
	return time.Unix(int64(v), 0)
}

// authError is the error of an authorization response redirect to the SPA.
func authError(t testing.TB, p page) string {
	t.Helper()
	u := p.location(t)
	if got := u.Scheme + "://" + u.Host + u.Path; got != spaRedirect {
		t.Fatalf("redirected to %s, want %s", u, spaRedirect)
	}
	if c := u.Query().Get("code"); c != "" {
		t.Fatalf("authorization response carries a code: %s", u.RawQuery)
	}
	return u.Query().Get("error")
}

// TestPromptLoginReachesUpstream reproduces the review: after one sign-in
// upstream, prompt=login (or max_age=0) through idp_hint must make the user
// enter a credential upstream again; without one, no code and no new
// auth_time. The ID token's auth_time is the upstream's sign-in, not the
// broker's callback.
func TestPromptLoginReachesUpstream(t *testing.T) {
	for _, conn := range []string{"okta", "google", "facebook"} {
		t.Run(conn, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			b := e.idpBrowser()
			ar := spaAuth("idp_hint", conn)
			first := e.exchange(codeFrom(t, e.enterCredential(b, e.authorize(b, ar), "1002")), ar)
			firstAuth := e.authTime(first.IDToken)
			time.Sleep(1100 * time.Millisecond) // a new auth_time would differ

			for _, fresh := range [][]string{{"prompt", "login"}, {"max_age", "0"}} {
				ar := spaAuth(append([]string{"idp_hint", conn}, fresh...)...)
				p := e.authorize(b, ar)
				if !e.isUpstreamLoginPage(p) {
					t.Fatalf("%s=%s: the upstream signed the user in without a credential: %d at %s (Location %q)",
						fresh[0], fresh[1], p.status, p.url, p.header.Get("Location"))
				}
				requested := time.Now().Truncate(time.Second)
				tr := e.exchange(codeFrom(t, e.enterCredential(b, p, "1002")), ar)
				if at := e.authTime(tr.IDToken); at.Before(requested) || !at.After(firstAuth) {
					t.Errorf("%s=%s: auth_time %s, want the new upstream sign-in (after %s)", fresh[0], fresh[1], at, requested)
				}
			}
		})
	}
}

// TestFederatedAuthTimeIsUpstreams: a second broker login that the
// upstream answers from its own session carries the upstream's auth_time,
// and max_age is measured against it.
func TestFederatedAuthTimeIsUpstreams(t *testing.T) {
	e := newEnv(t, envOptions{connectors: oktaOnly})
	b := e.idpBrowser()
	ar := spaAuth("idp_hint", "okta")
	first := e.exchange(codeFrom(t, e.enterCredential(b, e.authorize(b, ar), "1002")), ar)
	upstreamAuth := e.authTime(first.IDToken)
	time.Sleep(2100 * time.Millisecond)

	// A new broker session (another application's browser tab without the
	// broker cookie) signed in silently upstream.
	b2 := e.idpBrowser()
	idpURL, _ := url.Parse(e.idpTS.URL + "/")
	for _, c := range b.c.Jar.Cookies(idpURL) {
		if c.Name == "fakeidp_sso" { // cookies ignore ports: leave the broker's behind
			b2.c.Jar.SetCookies(idpURL, []*http.Cookie{c})
		}
	}
	ar2 := spaAuth("idp_hint", "okta")
	second := e.exchange(codeFrom(t, e.authorize(b2, ar2)), ar2)
	if at := e.authTime(second.IDToken); !at.Equal(upstreamAuth) {
		t.Errorf("auth_time of a silent upstream login = %s, want the upstream's %s", at, upstreamAuth)
	}
	// max_age=1: the upstream sign-in is older, so the user must enter a
	// credential upstream again.
	ar3 := spaAuth("idp_hint", "okta", "max_age", "1")
	if p := e.authorize(b2, ar3); !e.isUpstreamLoginPage(p) {
		t.Fatalf("max_age=1 with a 2 s old upstream sign-in: %d at %s (Location %q)", p.status, p.url, p.header.Get("Location"))
	}
}

// TestFreshLoginRefusedByIncapableConnector: a connector plugin that does
// not declare it can force a new sign-in upstream makes the broker answer
// login_required to prompt=login and max_age, rather than pretend.
func TestFreshLoginRefusedByIncapableConnector(t *testing.T) {
	e := newEnv(t, envOptions{connectors: testConnectorOnly})
	b := e.idpBrowser()
	for _, fresh := range [][]string{{"prompt", "login"}, {"max_age", "0"}, {"max_age", "3600"}} {
		p := e.authorize(b, spaAuth("idp_hint", "test", fresh[0], fresh[1]))
		if got := authError(t, p); got != "login_required" {
			t.Errorf("%s=%s through a connector that cannot force a sign-in: error %q, want login_required", fresh[0], fresh[1], got)
		}
	}
	// From the login page: the connector's button says it cannot, and
	// nothing goes upstream.
	p := e.authorize(b, spaAuth("prompt", "login"))
	var connect string
	for _, h := range hrefs(p.body) {
		if strings.Contains(h, "/connect/test") {
			connect = h
		}
	}
	if connect == "" {
		t.Fatalf("login page without the test connector's button: %d %.800s", p.status, p.body)
	}
	cu, err := p.url.Parse(connect)
	if err != nil {
		t.Fatal(err)
	}
	errorPage(t, b, e, b.get(cu.String()), http.StatusForbidden, "cannot confirm")
}

// TestUpstreamRevocationEndsSessions: a user disabled upstream loses the
// broker session at its next silent reuse once the last upstream check is
// older than federation.recheck_interval (here 0: every reuse), and every
// grant that came from that identity.
func TestUpstreamRevocationEndsSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk storagetest.Backend) {
		e := newEnv(t, envOptions{backend: bk, connectors: oktaOnly, recheckInterval: new(time.Duration),
			brokerConfig: func(e *env, c *broker.Config) {
				c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
			}})
		b := e.browser()
		_, tr1 := e.login(b, "okta", "1002")
		// A second application signs in silently with the broker session.
		ar := spaAuth("prompt", "none")
		tr2 := e.exchange(codeFrom(t, b.get(e.authURL(ar))), ar)

		if err := e.idp.SetUserDisabled("1002", true); err != nil {
			t.Fatal(err)
		}
		p := b.get(e.authURL(spaAuth("prompt", "none")))
		if got := authError(t, p); got != "login_required" {
			t.Fatalf("prompt=none for a user disabled upstream: error %q, want login_required", got)
		}
		// The re-check ended every grant of that identity, not just this
		// browser's session.
		for i, tr := range []tokens{tr1, tr2} {
			if e.userinfoStatus(tr.AccessToken) != http.StatusUnauthorized {
				t.Errorf("grant %d: access token still accepted after the upstream revoked the user", i+1)
			}
			if r := e.refresh(tr.RefreshToken); r.Error != "invalid_grant" {
				t.Errorf("grant %d: refresh %d %q, want invalid_grant", i+1, r.status, r.Error)
			}
		}
	})
}

// TestRefreshRevocationEndsSessions: a refresh grant whose upstream check
// finds the user revoked ends the broker sessions and the other grants of
// that identity too (the silent re-check interval has not passed).
func TestRefreshRevocationEndsSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, bk storagetest.Backend) {
		e := newEnv(t, envOptions{backend: bk, connectors: oktaOnly,
			brokerConfig: func(e *env, c *broker.Config) {
				c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
			}})
		b := e.browser()
		_, tr1 := e.login(b, "okta", "1002")
		ar := spaAuth("prompt", "none")
		tr2 := e.exchange(codeFrom(t, b.get(e.authURL(ar))), ar)
		// Another user's grant through the same connector is left alone.
		_, other := e.login(e.browser(), "okta", "1001")

		if err := e.idp.SetUserDisabled("1002", true); err != nil {
			t.Fatal(err)
		}
		if r := e.refresh(tr1.RefreshToken); r.Error != "invalid_grant" {
			t.Fatalf("refresh of a user disabled upstream: %d %q, want invalid_grant", r.status, r.Error)
		}
		if got := authError(t, b.get(e.authURL(spaAuth("prompt", "none")))); got != "login_required" {
			t.Errorf("prompt=none after the refresh found the user revoked: error %q, want login_required", got)
		}
		if e.userinfoStatus(tr2.AccessToken) != http.StatusUnauthorized {
			t.Error("the other grant of the revoked identity still has a working access token")
		}
		if err := e.idp.SetUserDisabled("1002", false); err != nil {
			t.Fatal(err)
		}
		if r := e.refresh(tr2.RefreshToken); r.Error != "invalid_grant" {
			t.Errorf("the other grant's refresh token: %d %q, want invalid_grant", r.status, r.Error)
		}
		if r := e.refresh(other.RefreshToken); r.status != http.StatusOK {
			t.Errorf("another user's grant: %d %q, want it to keep working", r.status, r.Error)
		}
	})
}

// userinfoStatus is the status of a userinfo request with an access token.
func (e *env) userinfoStatus(accessToken string) int {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, e.issuer+"/userinfo", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSessionThatCannotBeRechecked: a federated session whose identity
// cannot be re-checked upstream (no offline access: no upstream refresh
// token) is not reused silently once its check is due; an interactive
// request goes through its connector again, where the upstream's own
// session signs a valid user in.
func TestSessionThatCannotBeRechecked(t *testing.T) {
	e := newEnv(t, envOptions{connectors: oktaOnly, recheckInterval: new(time.Duration)})
	b := e.idpBrowser()
	online := func(extra ...string) authRequest {
		ar := spaAuth(extra...)
		ar.params.Set("scope", "openid profile email")
		return ar
	}
	ar := online("idp_hint", "okta")
	e.exchange(codeFrom(t, e.enterCredential(b, e.authorize(b, ar), "1002")), ar)

	if got := authError(t, e.authorize(b, online("prompt", "none"))); got != "login_required" {
		t.Errorf("prompt=none with a session that cannot be re-checked: error %q, want login_required", got)
	}
	// Interactive, without idp_hint: straight to the session's connector,
	// whose upstream session answers at once.
	ar2 := online()
	e.exchange(codeFrom(t, e.authorize(b, ar2)), ar2)
	if err := e.idp.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if p := e.authorize(b, online()); !e.isUpstreamLoginPage(p) {
		t.Errorf("a user disabled upstream: %d at %s (Location %q), want the upstream's login page", p.status, p.url, p.header.Get("Location"))
	}
}

// TestBridgekeeperUpstreamFreshLogin: the review's Dex case with another
// Bridgekeeper as the upstream (it keeps a session of its own and honours
// prompt=login and max_age): after one sign-in there, prompt=login and
// max_age=0 through idp_hint make the user enter the password there again.
func TestBridgekeeperUpstreamFreshLogin(t *testing.T) {
	e, u := newBridgekeeperUpstream(t, envOptions{})
	br := e.browser(u.host)
	ar := spaAuth("idp_hint", "bk")
	first := e.authTime(e.exchange(codeFrom(t, u.signIn(br, br.get(e.authURL(ar)))), ar).IDToken)
	time.Sleep(1100 * time.Millisecond)
	for _, fresh := range [][]string{{"prompt", "login"}, {"max_age", "0"}} {
		ar := spaAuth("idp_hint", "bk", fresh[0], fresh[1])
		p := br.get(e.authURL(ar))
		if !u.isLoginPage(p) {
			t.Fatalf("%s=%s: the upstream Bridgekeeper signed the user in from its session: %d at %s (Location %q)",
				fresh[0], fresh[1], p.status, p.url, p.header.Get("Location"))
		}
		tr := e.exchange(codeFrom(t, u.signIn(br, p)), ar)
		if at := e.authTime(tr.IDToken); !at.After(first) {
			t.Errorf("%s=%s: auth_time %s, want the new sign-in (after %s)", fresh[0], fresh[1], at, first)
		}
	}
}

// TestBridgekeeperUpstreamRevocation: a user disabled at the upstream
// Bridgekeeper loses the session here at the next silent sign-in (the
// re-check uses the upstream's refresh token) and the grants from it.
func TestBridgekeeperUpstreamRevocation(t *testing.T) {
	ctx := context.Background()
	e, u := newBridgekeeperUpstream(t, envOptions{recheckInterval: new(time.Duration)})
	br := e.browser(u.host)
	ar := spaAuth("idp_hint", "bk")
	tr := e.exchange(codeFrom(t, u.signIn(br, br.get(e.authURL(ar)))), ar)
	ar2 := spaAuth("prompt", "none")
	e.exchange(codeFrom(t, br.get(e.authURL(ar2))), ar2) // re-checked upstream, still valid

	if err := u.store.SetUserDisabled(ctx, "u_upstream_uma", true); err != nil {
		t.Fatal(err)
	}
	if got := authError(t, br.get(e.authURL(spaAuth("prompt", "none")))); got != "login_required" {
		t.Errorf("prompt=none for a user disabled at the upstream Bridgekeeper: error %q, want login_required", got)
	}
	if e.userinfoStatus(tr.AccessToken) != http.StatusUnauthorized {
		t.Error("the grant from the revoked identity still has a working access token")
	}
	if r := e.refresh(tr.RefreshToken); r.Error != "invalid_grant" {
		t.Errorf("refresh of the grant from the revoked identity: %d %q, want invalid_grant", r.status, r.Error)
	}
}
