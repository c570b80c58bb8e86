package federation_test

import (
	"context"
	"net/http"
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
