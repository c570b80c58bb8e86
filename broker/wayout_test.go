package broker

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// wantIn fails unless every part is in the page's (unescaped) body.
func wantIn(t *testing.T, what string, p page, status int, parts ...string) {
	t.Helper()
	if p.status != status {
		t.Errorf("%s: status %d, want %d: %.400s", what, p.status, status, p.body)
	}
	body := html.UnescapeString(p.body)
	for _, part := range parts {
		if !strings.Contains(body, part) {
			if i := strings.Index(body, "<main>"); i >= 0 {
				body = body[i:]
			}
			t.Errorf("%s: page lacks %q: %.1500s", what, part, body)
		}
	}
}

// TestReauthLoginPageSaysWhy: a signed-in user sent to the login page by
// prompt=login or a max_age their sign-in is older than is told why, and
// finds their address filled in; a first sign-in with login_hint finds the
// hint filled in and no "again" notice.
func TestReauthLoginPageSaysWhy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()

		first := br.get(e.authURL(spaAuth("login_hint", "hinted@example.com")))
		wantIn(t, "first sign-in", first, http.StatusOK, `value="hinted@example.com"`)
		if strings.Contains(first.body, "sign in again") {
			t.Errorf("first sign-in shows the re-authentication notice")
		}
		br.loginForCode(spaAuth())

		p := br.get(e.authURL(spaAuth("prompt", "login")))
		wantIn(t, "prompt=login", p, http.StatusOK, "Please sign in again to continue", "confirm that it's you", `value="`+userEmail+`"`)
		// A wrong password keeps the notice.
		wrong := br.submitLogin(p, userEmail, "wrong password!")
		wantIn(t, "prompt=login, wrong password", wrong, http.StatusUnauthorized, "Please sign in again to continue", "incorrect")

		p = br.get(e.authURL(spaAuth("max_age", "0")))
		wantIn(t, "max_age=0", p, http.StatusOK, "Please sign in again to continue", "recent sign-in", `value="`+userEmail+`"`)
		// The signed-in user's address wins over a login_hint.
		p = br.get(e.authURL(spaAuth("prompt", "login", "login_hint", "someone@example.org")))
		wantIn(t, "prompt=login with login_hint", p, http.StatusOK, `value="`+userEmail+`"`)

		// Signing in again completes the request.
		q := redirectParams(t, br.submitLogin(p, userEmail, userPassword), spaRedirect)
		if q.Get("code") == "" {
			t.Fatalf("no code after re-authentication: %v", q)
		}
	})
}

// TestDeadEndsHaveAWayOut: the issuer's root, a bare /login, an
// unregistered post-logout address and a not-activated login each answer
// with a page that says what to do and links on.
func TestDeadEndsHaveAWayOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, func(c *Config) {
			c.AccountPages = AccountPages{Account: "/account", Resend: "/register/resend"}
		})
		br := e.browser()

		home := br.get(e.issuer + "/")
		wantIn(t, "/", home, http.StatusOK, "open the application you want to use", `href="/account"`, `href="`+e.issuer+pathDiscovery+`"`)
		if ct := home.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("/: Content-Type %q", ct)
		}

		bare := br.get(e.issuer + pathLogin)
		wantIn(t, "bare /login", bare, http.StatusBadRequest, "Start from your application", `href="/account"`, e.issuer+pathAuth)
		if strings.Contains(bare.body, "expired") {
			t.Errorf("bare /login still says the sign-in expired")
		}
		expired := br.get(e.issuer + pathLogin + "?login=no-such-login")
		wantIn(t, "expired /login", expired, http.StatusBadRequest, "Sign-in expired", `href="/account"`, `href="`+e.issuer+`/"`)

		// Not activated: a link to send a new activation e-mail that
		// comes back to this sign-in.
		p := br.get(e.authURL(spaAuth()))
		id := loginID(t, p)
		r := br.submitLogin(p, inactiveEmail, userPassword)
		wantIn(t, "not activated", r, http.StatusForbidden, "not activated", `href="/register/resend?login=`+id+`"`, "Send a new activation link")
		if wrong := br.submitLogin(p, userEmail, "wrong password!"); strings.Contains(wrong.body, "activation link") {
			t.Errorf("a wrong password offers an activation link")
		}

		// Sign-out to an unregistered address: still signed in, a way
		// back to the app's registered origin, a hint for the developer.
		br.loginForCode(spaAuth())
		bad := "http://127.0.0.1:9999/not-registered"
		out := br.get(e.issuer + pathLogout + "?" + url.Values{"client_id": {spaID}, "post_logout_redirect_uri": {bad}}.Encode())
		wantIn(t, "unregistered logout", out, http.StatusBadRequest,
			"not registered", `href="`+e.issuer+pathLogout+`"`, `href="http://127.0.0.1:9999/"`,
			`client "spa"`, "--post-logout-redirect-uri "+bad)
		unknown := br.get(e.issuer + pathLogout + "?" + url.Values{"client_id": {"nope"}, "post_logout_redirect_uri": {bad}}.Encode())
		wantIn(t, "unknown client logout", unknown, http.StatusBadRequest, `no client "nope"`, "bridgekeeper client create --id nope")
		if _, err := e.srv.CurrentUser(mustRequestWithCookies(t, br, e.issuer)); err != nil {
			t.Errorf("the failed sign-out ended the session: %v", err)
		}
	})
}

// mustRequestWithCookies is a request carrying the browser's cookies for
// the issuer, to ask the server who is signed in.
func mustRequestWithCookies(t *testing.T, br *browser, issuer string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, issuer+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(issuer + "/")
	for _, c := range br.c.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	return req
}

// TestSignInWithoutAnApplication: SignInURL signs the user in to the broker
// and goes back to a page of the broker's own, never off it; no code is
// issued to anyone.
func TestSignInWithoutAnApplication(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		for back, want := range map[string]string{
			"/account?x=1":           "/account?x=1",
			"//evil.example/account": "/",
			"https://evil.example/":  "/",
			"/\\evil.example/":       "/",
			"javascript:alert(1)":    "/",
			"":                       "/",
		} {
			br := e.browser()
			start := e.srv.SignInURL(back)
			if !strings.HasPrefix(start, e.issuer+"/") {
				t.Fatalf("SignInURL(%q) = %q", back, start)
			}
			p := br.get(start)
			br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			r := br.submitLogin(p, userEmail, userPassword)
			if r.status != http.StatusSeeOther || r.header.Get("Location") != e.issuer+want {
				t.Errorf("return_to %q: %d to %q, want %s", back, r.status, r.header.Get("Location"), e.issuer+want)
			}
			if _, err := e.srv.CurrentUser(mustRequestWithCookies(t, br, e.issuer)); err != nil {
				t.Errorf("return_to %q: not signed in: %v", back, err)
			}
		}
	})
}
