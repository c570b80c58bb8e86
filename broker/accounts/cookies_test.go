package accounts_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestHostPrefixCookies backs SECURITY.md: on an https issuer the account
// pages' form-token cookie is a __Host- cookie (Secure, Path=/, no
// Domain), and the forms work with it; on http it keeps its name.
func TestHostPrefixCookies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) {
			c.Issuer = strings.Replace(c.Issuer, "http://", "https://", 1)
		})
		req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/reset", nil)
		res, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		var found bool
		for _, c := range res.Cookies() {
			if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie %+v: want __Host-, Secure, Path=/, no Domain, HttpOnly, SameSite=Lax", c)
			}
			found = found || c.Name == "__Host-bk_form"
		}
		if !found {
			t.Fatalf("no __Host-bk_form cookie: %v", res.Header.Values("Set-Cookie"))
		}
		// The form token round-trips: the reset form is accepted.
		wantStatus(t, "reset", h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)
		// A form whose token came in a plain-named cookie is refused.
		u, _ := url.Parse(h.srv.URL)
		var token string
		for _, c := range h.http.Jar.Cookies(u) {
			if c.Name == "__Host-bk_form" {
				token = c.Value
			}
		}
		b := h.newBrowser()
		b.Jar.SetCookies(u, []*http.Cookie{{Name: "bk_form", Value: token, Path: "/"}})
		req, _ = http.NewRequest(http.MethodPost, h.srv.URL+"/reset", strings.NewReader(url.Values{"email": {adaEmail}, "csrf_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := h.doWith(b, req); r.status == http.StatusOK {
			t.Errorf("reset with an unprefixed form-token cookie: %d, want a refusal", r.status)
		}
	})
}
