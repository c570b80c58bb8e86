package broker

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestNewValidatesConfig(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	good := e.srv.cfg
	for name, mod := range map[string]func(*Config){
		"no issuer":     func(c *Config) { c.Issuer = "" },
		"relative":      func(c *Config) { c.Issuer = "/oauth" },
		"query":         func(c *Config) { c.Issuer = "https://id.example?x=1" },
		"no store":      func(c *Config) { c.Store = nil },
		"no keys":       func(c *Config) { c.Keys = nil },
		"no secret":     func(c *Config) { c.Secret = nil },
		"reuse grace":   func(c *Config) { c.RefreshReuseGrace = time.Hour },
		"bad templates": func(c *Config) { c.TemplateDir = writeBadTemplate(t) },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if got := MaxTokenLifetime(Config{}); got != time.Hour {
		t.Errorf("MaxTokenLifetime of defaults = %v", got)
	}
}

func writeBadTemplate(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login.html"), []byte(`{{if}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIssuerWithPath(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.Issuer += "/auth/" })
	if !strings.HasSuffix(e.issuer, "/auth") {
		t.Fatalf("issuer %q", e.issuer)
	}
	ar := spaAuth()
	br := e.browser()
	tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
	if _, claims := e.verifyJWT(tr.IDToken); claims["iss"] != e.issuer {
		t.Errorf("iss %v", claims["iss"])
	}
	u, _ := url.Parse(e.issuer)
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			return
		}
	}
	t.Error("no session cookie under the issuer path")
}
