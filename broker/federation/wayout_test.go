package federation_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

var (
	signInLinkRE = regexp.MustCompile(`href="([^"]+)">Sign in<`)
	oktaButtonRE = regexp.MustCompile(`href="([^"]+)">Continue with Okta<`)
	loginIDRE    = regexp.MustCompile(`name="login" value="([^"]+)"`)
)

func match(t *testing.T, re *regexp.Regexp, p page, what string) string {
	t.Helper()
	m := re.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s: not found on the page (%d at %s): %.2000s", what, p.status, p.url, p.body)
	}
	return html.UnescapeString(m[1])
}

// TestAccountPageSignsInAndComesBack: /account opened signed out links to
// a sign-in with no application; signing in there, with a password or
// through a connector, comes back to the account page (and grants no
// application anything).
func TestAccountPageSignsInAndComesBack(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			e := newEnv(t, envOptions{backend: b, accounts: true, connectors: oktaOnly})
			local := e.createLocalUser("carol@example.com", true)

			br := e.browser()
			out := br.get(e.issuer + "/account")
			if out.status != http.StatusUnauthorized || !strings.Contains(out.body, "You are not signed in") {
				t.Fatalf("/account signed out: %d %.1500s", out.status, out.body)
			}
			link := match(t, signInLinkRE, out, "the Sign in link")
			login := br.get(link)
			if login.status != http.StatusOK || !strings.Contains(login.body, "Continue with Okta") {
				t.Fatalf("sign-in link: %d at %s: %.1500s", login.status, login.url, login.body)
			}
			done := br.postForm(e.issuer+"/login", url.Values{
				"login": {match(t, loginIDRE, login, "login id")}, "email": {local.Email}, "password": {"local password 0123"},
			})
			if done.status != http.StatusOK || done.url.Path != "/account" || !strings.Contains(done.body, local.Email) {
				t.Fatalf("after signing in: %d at %s: %.1500s", done.status, done.url, done.body)
			}
			// The account page says what signing out everywhere means.
			if !strings.Contains(html.UnescapeString(done.body), "for up to 15 minutes") {
				t.Errorf("account page does not say how long access tokens outlive a sign-out: %.2500s", done.body)
			}

			// Through a connector, in another browser.
			br2 := e.browser()
			login = br2.get(match(t, signInLinkRE, br2.get(e.issuer+"/account"), "the Sign in link"))
			up := br2.get(match(t, oktaButtonRE, login, "the Okta button"))
			back := e.upstreamLogin(up.location(t), "1001")
			acc := br2.get(back.String())
			if acc.status != http.StatusOK || acc.url.Path != "/account" || !strings.Contains(acc.body, "Change your password") {
				t.Fatalf("after signing in with Okta: %d at %s: %.1500s", acc.status, acc.url, acc.body)
			}

			// Neither sign-in issued anything to an application.
			if n := storagetest.CountRows(t, e.store, "authorize_codes"); n != 0 {
				t.Errorf("%d authorization codes after sign-ins with no application", n)
			}

			// A return path off the broker is not followed.
			evil := br.get(e.issuer + "/login/start?return_to=" + url.QueryEscape("//evil.example/account"))
			id := match(t, loginIDRE, evil, "login id")
			res := br.postForm(e.issuer+"/login", url.Values{"login": {id}, "email": {local.Email}, "password": {"local password 0123"}})
			if res.url.Host != e.ts.Listener.Addr().String() || res.url.Path != "/" {
				t.Errorf("return_to //evil.example: ended at %s", res.url)
			}
		})
	}
}

// TestNotActivatedLoginLinksToResend: the login of an account that is not
// activated yet links to the form that sends a new activation e-mail, and
// that form leads back to the sign-in.
func TestNotActivatedLoginLinksToResend(t *testing.T) {
	e := newEnv(t, envOptions{accounts: true, connectors: oktaOnly})
	u := e.createLocalUser("dave@example.com", true)
	if _, err := e.store.ChangeUserSecurity(context.Background(), u.ID, func(u *storage.User) error { u.Active = false; return nil }); err != nil {
		t.Fatal(err)
	}
	br := e.browser()
	login := br.get(e.authURL(spaAuth()))
	id := match(t, loginIDRE, login, "login id")
	r := br.postForm(e.issuer+"/login", url.Values{"login": {id}, "email": {u.Email}, "password": {"local password 0123"}})
	resend := match(t, regexp.MustCompile(`href="([^"]+)">Send a new activation link<`), r, "the resend link")
	if resend != "/register/resend?login="+id {
		t.Errorf("resend link %q", resend)
	}
	form := br.get(e.issuer + resend)
	if form.status != http.StatusOK || !strings.Contains(form.body, "Continue signing in") {
		t.Errorf("resend form: %d %.1500s", form.status, form.body)
	}
}
