package plugins

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// TestDocsTemplate builds the Go template in docs/plugins.md and logs a
// user in through it, so the guide's copyable main.go keeps working.
func TestDocsTemplate(t *testing.T) {
	ctx := testContext(t)
	doc, err := os.ReadFile(filepath.Join("..", "docs", "plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	src := goBlockAfter(t, string(doc), "## A plugin in Go")

	// Build it as if it were a package of this module, without writing
	// into the source tree.
	mainPath := filepath.Join(t.TempDir(), "main.go")
	if err := os.WriteFile(mainPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := testenv.BuildReplacing(t, "./plugins/internal/doctemplate", map[string]string{"plugins/internal/doctemplate/main.go": mainPath})

	p, _ := launchTest(t, func(c *Config) {
		c.ID = "example"
		c.Path = bin
		c.Config = []byte(`{"auth_url":"https://sso.example/authorize"}`)
	})
	login, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "st", CallbackURL: "https://broker.test/callback/example"})
	if err != nil || !strings.HasPrefix(login.URL, "https://sso.example/authorize?") {
		t.Fatalf("LoginURL = %+v, %v", login, err)
	}
	id, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: login.ConnectorState, CallbackURL: "https://broker.test/callback/example", Query: url.Values{"code": {"c1"}}})
	if err != nil || id.Subject != "example|c1" {
		t.Fatalf("HandleCallback = %+v, %v", id, err)
	}
	_, err = p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: nil, CallbackURL: "", Query: url.Values{"error": {"access_denied"}}})
	if !errors.Is(err, connectors.ErrUpstreamDenied) {
		t.Errorf("HandleCallback with an error: %v", err)
	}
	if _, err := Launch(ctx, Config{ID: "example", Path: bin, Config: []byte(`{}`)}, nil); err == nil || !strings.Contains(err.Error(), "auth_url is required") {
		t.Errorf("Launch without auth_url: %v", err)
	}
}

// goBlockAfter returns the first ```go block after the heading.
func goBlockAfter(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, heading)
	if !ok {
		t.Fatalf("docs/plugins.md has no %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		t.Fatalf("no go block after %q", heading)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated go block")
	}
	return block
}
