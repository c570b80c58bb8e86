package federation_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
)

// TestErrorPageHasTheBrokersTheme: a federation error (the user cancelled
// at the upstream) is the broker's error page, in the configured theme
// (product name, logo, colour), with the way back to the login page.
func TestErrorPageHasTheBrokersTheme(t *testing.T) {
	e := newEnv(t, envOptions{brokerConfig: func(_ *env, c *broker.Config) {
		c.Theme = broker.Theme{ProductName: "Acme ID", PrimaryColor: "#123456", LogoURL: "https://acme.example/logo.png"}
	}})
	br := e.browser()
	back, err := fakeidp.Deny(context.Background(), e.startUpstream(br, spaAuth(), "okta").String())
	if err != nil {
		t.Fatal(err)
	}
	p := br.get(back.String())
	errorPage(t, br, e, p, http.StatusForbidden, "cancelled or refused")
	for _, want := range []string{"<title>Sign-in cancelled · Acme ID</title>", "--primary: #123456", `src="https://acme.example/logo.png"`, `alt="Acme ID"`, "Choose another way to sign in"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("federation error page lacks %q: %.1500s", want, p.body)
		}
	}
	if !slices.ContainsFunc(hrefs(p.body), func(h string) bool { return strings.HasPrefix(h, e.issuer+"/login?login=") }) {
		t.Errorf("no link back to the login page: %v", hrefs(p.body))
	}
}

// TestEveryPageFamilyHasOneLayout: the broker's pages, the account pages
// and the federation's pages (its error page and its account-linking page)
// are rendered through the one layout of the page kit (internal/pagekit):
// an operator's layout.html in ui.template_dir reaches every one of them,
// each carries the same style sheet, theme and logo, and each is sent with
// the same security headers (the account pages add form-action 'self').
func TestEveryPageFamilyHasOneLayout(t *testing.T) {
	dir := t.TempDir()
	layout, err := os.ReadFile("../../internal/pagekit/templates/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	const marker = `<meta name="layout" content="the operator's">`
	custom := strings.Replace(string(layout), "<head>", "<head>"+marker, 1)
	if custom == string(layout) {
		t.Fatal("the kit's layout has no <head>")
	}
	if err := os.WriteFile(filepath.Join(dir, "layout.html"), []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{linkByEmail: true, accounts: true, connectors: oktaOnly, brokerConfig: func(_ *env, c *broker.Config) {
		c.Theme = broker.Theme{ProductName: "Acme ID", PrimaryColor: "#123456", LogoURL: "https://acme.example/logo.png", TemplateDir: dir}
	}})

	// The link page: an Okta login with the address of an existing account.
	const ownerPW = "owner password 0123"
	owner := e.browser()
	e.register(owner, "alice@example.com", ownerPW)
	e.activate(owner, "alice@example.com")
	link := e.upstreamCallback(owner, spaAuth(), "okta", "1001")
	if !isLinkPage(link) {
		t.Fatalf("no link page: %d %.800s", link.status, link.body)
	}
	br := e.browser()
	back, err := fakeidp.Deny(context.Background(), e.startUpstream(br, spaAuth(), "okta").String())
	if err != nil {
		t.Fatal(err)
	}
	pages := []struct {
		name   string
		p      page
		status int
	}{
		{"broker login page", e.browser().get(e.authURL(spaAuth())), http.StatusOK},
		{"broker home page", e.browser().get(e.issuer + "/"), http.StatusOK},
		{"broker error page", e.browser().get(e.issuer + "/login"), http.StatusBadRequest},
		{"accounts form", e.browser().get(e.issuer + "/register"), http.StatusOK},
		{"accounts error page", e.browser().postForm(e.issuer+"/register", url.Values{"email": {"x@example.com"}}), http.StatusForbidden},
		{"federation error page", br.get(back.String()), http.StatusForbidden},
		{"federation link page", link, http.StatusOK},
	}
	styleRE := regexp.MustCompile(`(?s)<style>.*</style>`)
	login := pages[0].p
	style := styleRE.FindString(login.body)
	if !strings.Contains(style, "--primary: #123456;") {
		t.Fatalf("login page style: %q", style)
	}
	for _, pg := range pages {
		p := pg.p
		if p.status != pg.status {
			t.Errorf("%s: %d, want %d: %.800s", pg.name, p.status, pg.status, p.body)
			continue
		}
		for _, want := range []string{marker, " · Acme ID</title>", `<img src="https://acme.example/logo.png" alt="Acme ID">`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("%s lacks %q: %.1500s", pg.name, want, p.body)
			}
		}
		if got := styleRE.FindString(p.body); got != style {
			t.Errorf("%s has another style sheet than the login page:\n%s", pg.name, got)
		}
		for _, h := range []string{"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control", "Content-Type", "Strict-Transport-Security"} {
			if got, want := p.header.Get(h), login.header.Get(h); got != want {
				t.Errorf("%s: %s = %q, the login page's %q", pg.name, h, got, want)
			}
		}
		csp := strings.TrimSuffix(p.header.Get("Content-Security-Policy"), "; form-action 'self'")
		if want := login.header.Get("Content-Security-Policy"); csp != want {
			t.Errorf("%s: Content-Security-Policy %q, the login page's %q", pg.name, p.header.Get("Content-Security-Policy"), want)
		}
	}
}
