package broker

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestThemedPages(t *testing.T) {
	theme := Theme{
		ProductName:  `Acme <Corp> & "Co"`,
		LogoURL:      "https://cdn.example/logo.png?a=1&b=2",
		PrimaryColor: "#c0ffee",
	}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.Theme = theme })
	br := e.browser()
	pages := map[string]page{
		"login":     br.get(e.authURL(spaAuth())),
		"error":     br.get(e.issuer + "/no-such-page"),
		"logout":    br.get(e.issuer + pathLogout),
		"bad login": e.browser().get(e.issuer + pathLogin + "?login=unknown"),
	}
	for name, p := range pages {
		if p.status == http.StatusInternalServerError {
			t.Fatalf("%s page: 500: %s", name, p.body)
		}
		for _, want := range []string{
			`<title>`,
			`· Acme &lt;Corp&gt; &amp; &#34;Co&#34;</title>`,
			`--primary: #c0ffee;`,
			`<img src="https://cdn.example/logo.png?a=1&amp;b=2" alt="Acme &lt;Corp&gt; &amp; &#34;Co&#34;">`,
		} {
			if !strings.Contains(p.body, want) {
				t.Errorf("%s page lacks %q:\n%s", name, want, p.body)
			}
		}
		if strings.Contains(p.body, "<Corp>") {
			t.Errorf("%s page has the product name unescaped", name)
		}
	}
}

func TestThemeDefaultsAndValidation(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	p := e.browser().get(e.authURL(spaAuth()))
	for _, want := range []string{`<span class="product">Bridgekeeper</span>`, `--primary: #2f5bd3;`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("default theme: login page lacks %q", want)
		}
	}

	// The colour check is the page kit's, the one every page family uses.
	cfg := e.srv.cfg
	for _, bad := range []string{"red;} body{display:none", "url(x)", "#12345"} {
		cfg.Theme.PrimaryColor = bad
		if _, err := New(context.Background(), cfg); !errors.Is(err, pagekit.ErrThemeColour) {
			t.Errorf("New with primary colour %q: %v, want pagekit.ErrThemeColour", bad, err)
		}
	}
}

func TestTemplateDirOverrides(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "logged_out.html"), []byte(`{{template "head" .}}<p>Custom goodbye</p>{{template "foot" .}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.TemplateDir = dir })
	p := e.browser().get(e.issuer + pathLogout)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Custom goodbye") {
		t.Fatalf("override not used: %d %.300s", p.status, p.body)
	}
}
