package broker

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/cookie"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestHostPrefixCookies backs SECURITY.md: on an https issuer every cookie
// the broker sets is a __Host- cookie (Secure, Path=/, no Domain), so no
// other host under the same domain can plant or overwrite it (session
// fixation, login CSRF through a sibling subdomain); it still carries the
// login and the session.
func TestHostPrefixCookies(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) {
		c.Issuer = strings.Replace(c.Issuer, "http://", "https://", 1) + "/id"
	})
	br := e.browser()
	checkCookies := func(what string, resp *http.Response, want ...string) {
		t.Helper()
		got := map[string]bool{}
		for _, c := range resp.Cookies() {
			got[c.Name] = true
			raw := ""
			for _, line := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(line, c.Name+"=") {
					raw = line
				}
			}
			if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("%s: cookie %q: want __Host-, Secure, Path=/, no Domain, HttpOnly, SameSite=Lax", what, raw)
			}
		}
		for _, name := range want {
			if !got["__Host-"+name] {
				t.Errorf("%s: no __Host-%s cookie (got %v)", what, name, got)
			}
		}
	}
	noFollow := *br.c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ar := spaAuth()
	resp, err := noFollow.Get(e.authURL(ar))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkCookies("authorize", resp, bindingCookie)
	p := br.get(resp.Header.Get("Location"))
	resp, err = noFollow.PostForm(e.issuer+pathLogin, url.Values{"login": {loginID(t, p)}, "email": {userEmail}, "password": {userPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkCookies("login", resp, sessionCookie)
	if q := redirectParams(t, page{status: resp.StatusCode, header: resp.Header}, spaRedirect); q.Get("code") == "" {
		t.Fatalf("login: %v", q)
	}
	// The session cookie is sent back: prompt=none gets a code.
	if q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect); q.Get("code") == "" {
		t.Fatalf("prompt=none with the session: %v", q)
	}
	// A plain-named cookie (set by a sibling host over http, say) is not
	// the session.
	br2 := e.browser()
	u, _ := url.Parse(e.issuer)
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == "__Host-"+sessionCookie {
			br2.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: c.Value, Path: "/"}})
		}
	}
	if q := redirectParams(t, br2.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none with an unprefixed cookie: %v", q)
	}
}

func TestSecureCookiesForHTTPSIssuer(t *testing.T) {
	s := &Server{cookies: cookie.For("https://id.example/auth"), basePath: "/auth", cfg: Config{PendingLoginLifetime: time.Minute}}
	rec := httptest.NewRecorder()
	s.browserBinding(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != "__Host-"+bindingCookie || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || c[0].Path != "/" {
		t.Fatalf("cookie %+v", c)
	}
}
