package broker

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestConfigIsFixedAtNew: the login options and links are the ones New
// was given; a caller that changes its slices afterwards (relabels a
// button or a link) changes nothing on the login page.
func TestConfigIsFixedAtNew(t *testing.T) {
	var cfg *Config
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) {
		c.LoginOptions = []LoginOption{{ID: "fake", Label: "Fake IdP", URL: func(id string) string { return "/connector/fake?login=" + id }}}
		c.LoginLinks = []LoginLink{{Label: "Create account", Href: "/register"}}
		cfg = c
	})
	cfg.LoginOptions[0].Label = "Evil IdP"
	cfg.LoginLinks[0] = LoginLink{Label: "Phish", Href: "https://evil.example/"}

	p := e.browser().get(e.authURL(spaAuth()))
	if !strings.Contains(p.body, "Continue with Fake IdP") || !strings.Contains(p.body, "Create account") {
		t.Fatalf("login page lacks the configured option or link: %.2000s", p.body)
	}
	if strings.Contains(p.body, "Evil IdP") || strings.Contains(p.body, "Phish") {
		t.Errorf("a change after New reached the login page: %.2000s", p.body)
	}
}

// TestMountsCannotShadowTheBroker: a mounted route on a broker path (the
// token endpoint, the JWKS, the login page) does not replace the broker's
// own; New calls each Mount once, with the server it builds.
func TestMountsCannotShadowTheBroker(t *testing.T) {
	calls := 0
	var mounted *Server
	teapot := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) {
		c.Mounts = []Mount{func(r *mux.Router, s *Server) error {
			calls++
			mounted = s
			for _, p := range []string{pathToken, pathJWKS, pathLogin, pathDiscovery, "/mounted"} {
				r.HandleFunc(p, teapot)
			}
			return nil
		}}
	})
	if calls != 1 || mounted != e.srv {
		t.Fatalf("Mount called %d times, with %p (the server is %p)", calls, mounted, e.srv)
	}
	br := e.browser()
	for _, p := range []string{pathJWKS, pathDiscovery, pathLogin} {
		if r := br.get(e.issuer + p); r.status == http.StatusTeapot {
			t.Errorf("GET %s answered by the mount", p)
		}
	}
	if r := br.postForm(e.issuer+pathToken, url.Values{"grant_type": {"client_credentials"}}); r.status == http.StatusTeapot {
		t.Errorf("POST %s answered by the mount", pathToken)
	}
	if r := br.get(e.issuer + "/mounted"); r.status != http.StatusTeapot {
		t.Errorf("GET /mounted: %d, want the mount's 418", r.status)
	}
}

// TestMountErrorFailsNew: a Mount that cannot serve its pages fails New
// with its error; no server is returned.
func TestMountErrorFailsNew(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	broken := errors.New("the pages do not load")
	cfg := e.srv.cfg
	cfg.Mounts = []Mount{func(*mux.Router, *Server) error { return broken }}
	if s, err := New(t.Context(), cfg); !errors.Is(err, broken) || s != nil {
		t.Errorf("New = %v, %v; want no server and the mount's error", s, err)
	}
}

// TestNewRefusesAnIncompleteLoginOption: a login option without an id (it
// could never match idp_hint) or without a URL (the login page could not
// link it) is a configuration error at New, not a panic on a request.
func TestNewRefusesAnIncompleteLoginOption(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	url := func(string) string { return "/x" }
	for name, o := range map[string]LoginOption{
		"no id":  {Label: "X", URL: url},
		"no URL": {ID: "x", Label: "X"},
	} {
		cfg := e.srv.cfg
		cfg.LoginOptions = []LoginOption{o}
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestAccessTokenLifetime: the lifetime a broker built from a
// configuration gives its access tokens (what the account pages tell
// users), the default included.
func TestAccessTokenLifetime(t *testing.T) {
	if got := AccessTokenLifetime(Config{}); got != 15*time.Minute {
		t.Errorf("default: %v, want 15m", got)
	}
	if got := AccessTokenLifetime(Config{AccessTokenLifetime: 5 * time.Minute}); got != 5*time.Minute {
		t.Errorf("configured 5m: %v", got)
	}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.AccessTokenLifetime = 7 * time.Minute })
	if got := AccessTokenLifetime(e.srv.cfg); got != 7*time.Minute {
		t.Errorf("the server's: %v", got)
	}
}
