package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestPageSecurityHeaders backs SECURITY.md (RFC 9700 §4.2, §4.12, §4.16):
// every page of the broker (the login page, an error page, the logout
// confirmation and "signed out" pages, the form_post page) sends no Referer
// onwards and cannot be framed, and the answers to the login POST and the
// logout confirmation are 303s, which browsers follow with a GET (a 307
// would resend the form to the client).
func TestPageSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	br := e.browser()
	checkHeaders := func(what string, p page) {
		t.Helper()
		for name, want := range map[string]string{
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
			"Content-Security-Policy": "frame-ancestors 'none'",
			"Cache-Control":           "no-store",
		} {
			if got := p.header.Get(name); !strings.Contains(got, want) {
				t.Errorf("%s (%d): %s = %q, want %q", what, p.status, name, got, want)
			}
		}
	}
	p := br.get(e.authURL(spaAuth()))
	if p.status != http.StatusOK {
		t.Fatalf("login page: %d", p.status)
	}
	checkHeaders("login page", p)
	r := br.submitLogin(p, userEmail, userPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("login POST answered %d, want 303", r.status)
	}
	redirectParams(t, r, spaRedirect)

	checkHeaders("error page", br.get(e.authURL(spaAuth("redirect_uri", "https://evil.example/cb"))))
	checkHeaders("form_post page", br.get(e.authURL(spaAuth("response_mode", "form_post"))))
	confirm := br.get(e.issuer + pathLogout + "?" + url.Values{"client_id": {spaID}, "post_logout_redirect_uri": {spaLogout}}.Encode())
	if confirm.status != http.StatusOK {
		t.Fatalf("logout confirmation: %d", confirm.status)
	}
	checkHeaders("logout confirmation", confirm)
	confirmed := br.postForm(e.issuer+pathLogout, url.Values{"confirm": {"yes"}, "client_id": {spaID}, "post_logout_redirect_uri": {spaLogout}})
	if confirmed.status != http.StatusSeeOther {
		t.Errorf("logout confirmation POST answered %d, want 303", confirmed.status)
	}
	redirectParams(t, confirmed, spaLogout)
	checkHeaders("signed out page", br.postForm(e.issuer+pathLogout, url.Values{"client_id": {spaID}}))
}
