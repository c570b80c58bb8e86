package federation_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestHostPrefixCookies backs SECURITY.md: on an https issuer the
// federation's login cookie is a __Host- cookie (Secure, Path=/, no
// Domain), one per connector, and a federated login works with it.
func TestHostPrefixCookies(t *testing.T) {
	e := newEnv(t, envOptions{https: true})
	b := e.browser()
	noFollow := *b.c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ar := spaAuth()
	ar.params.Set("idp_hint", "okta")
	resp, err := noFollow.Get(e.authURL(ar))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	names := map[string]bool{}
	for _, c := range resp.Cookies() {
		names[c.Name] = true
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %+v: want __Host-, Secure, Path=/, no Domain, HttpOnly, SameSite=Lax", c)
		}
	}
	if !names["__Host-bk_fed_okta"] || !names["__Host-bk_login"] {
		t.Fatalf("cookies %v, want __Host-bk_fed_okta and __Host-bk_login", names)
	}
	upstream, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	back := e.upstreamLogin(upstream, "1001")
	codeFrom(t, b.get(back.String()))
}
