package federation_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
)

// TestDocsPluginWalkthrough follows docs/plugins.md "A plugin in Go" as a
// plugin author would: the section's main.go and go.mod in a module of
// their own (the replace line pointed at this checkout), its build
// commands, its YAML (path and sha256 filled in), a made-up OAuth2
// provider on loopback, and a login through the plugin's button to an ID
// token whose claims the plugin made.
func TestDocsPluginWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command: cannot build the plugin of docs/plugins.md")
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := docSection(t, string(raw), "## A plugin in Go")
	mainGo := fencedBlock(t, section, "go")
	goMod := fencedBlock(t, section, "go.mod")
	commands := fencedBlock(t, section, "sh")
	yamlDoc := fencedBlock(t, section, "yaml")

	// The module, as the doc shows it, with the replace aimed at this checkout.
	checkout, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	replaceRE := regexp.MustCompile(`(?m)^(replace github\.com/bridgekeeper/bridgekeeper => ).*$`)
	if !replaceRE.MatchString(goMod) {
		t.Fatalf("the go.mod of docs/plugins.md has no replace line for a local checkout:\n%s", goMod)
	}
	goMod = replaceRE.ReplaceAllLiteralString(goMod, "replace github.com/bridgekeeper/bridgekeeper => "+checkout)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.go"), mainGo)
	writeFile(t, filepath.Join(dir, "go.mod"), goMod)

	// The doc's commands, one by one, in the module's directory.
	var bin string
	for _, line := range strings.Split(strings.TrimSpace(commands), "\n") {
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		if args[0] == "sha256sum" {
			bin = filepath.Join(dir, args[1])
			continue // the test hashes the file itself, below
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s (in the plugin's module): %v\n%s", line, err, out)
		}
	}
	if bin == "" {
		t.Fatal("the commands of docs/plugins.md do not show how to get the sha256")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("the binary the doc names: %v", err)
	}
	sum := sha256.Sum256(data)

	// The made-up provider: its authorization endpoint sends the browser
	// back with a code, as an OAuth2 provider does.
	var mu sync.Mutex
	var asked string
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/authorize" || q.Get("response_type") != "code" || q.Get("state") == "" || q.Get("redirect_uri") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		asked = q.Get("redirect_uri")
		mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=alice&state="+q.Get("state"), http.StatusFound)
	}))
	t.Cleanup(provider.Close)

	// The doc's YAML with the values a reader fills in.
	yamlDoc = setYAMLValue(t, yamlDoc, "path", bin)
	yamlDoc = setYAMLValue(t, yamlDoc, "sha256", hex.EncodeToString(sum[:]))
	yamlDoc = setYAMLValue(t, yamlDoc, "auth_url", provider.URL+"/authorize")
	cfgPath := filepath.Join(dir, "bridgekeeper.yaml")
	writeFile(t, cfgPath, yamlDoc)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("the YAML of docs/plugins.md: %v", err)
	}
	if len(cfg.Connectors) != 1 || cfg.Connectors[0].SHA256 == "" {
		t.Fatalf("connectors from the doc's YAML: %+v", cfg.Connectors)
	}
	e := newEnv(t, envOptions{connectors: func(*env) []config.Connector { return cfg.Connectors }})
	id := cfg.Connectors[0].ID

	// The login page has the plugin's button; it leads to the provider
	// and back, and on to the client with a code; so does idp_hint. The
	// same upstream user is the same broker user both times.
	var subs []any
	for _, hint := range []bool{false, true} {
		claims := e.docLogin(t, provider.URL, cfg.Connectors[0], hint)
		mu.Lock()
		if asked != e.issuer+"/callback/"+id {
			t.Errorf("the provider was asked to redirect to %q, want %s", asked, e.issuer+"/callback/"+id)
		}
		mu.Unlock()
		checkFederated(t, claims, id)
		if claims["name"] != "alice" {
			t.Errorf("name = %v, want the plugin's alice; claims %v", claims["name"], claims)
		}
		// Without trust_email the plugin's address is not the user's (docs/federation.md).
		if claims["email"] != nil {
			t.Errorf("email = %v from a connector without trust_email", claims["email"])
		}
		subs = append(subs, claims["sub"])
	}
	if subs[0] == nil || subs[0] == "" || subs[0] != subs[1] {
		t.Errorf("sub of two logins of the same upstream user: %v", subs)
	}

	// The YAML's sha256 is in force: another sum is refused at the start.
	bad := cfg.Connectors[0]
	bad.SHA256 = strings.Repeat("0", 64)
	_, err = federation.New(context.Background(), federation.Config{
		Store: e.store, Logger: slog.New(e.logs), Issuer: e.issuer,
		Connectors: []config.Connector{bad}, DataKey: e.dataKey,
	})
	if err == nil || !strings.Contains(err.Error(), hex.EncodeToString(sum[:])) {
		t.Errorf("a connector entry with another sha256: %v", err)
	}
}

// docLogin logs in through the login page's button of connector c (or
// with idp_hint), with a new browser, and returns the ID token's claims.
func (e *env) docLogin(t *testing.T, providerURL string, c config.Connector, hint bool) map[string]any {
	t.Helper()
	b := e.browser(strings.TrimPrefix(providerURL, "http://"))
	ar := spaAuth()
	if hint {
		ar.params.Set("idp_hint", c.ID)
		return e.idClaims(e.exchange(codeFrom(t, b.get(e.authURL(ar))), ar).IDToken)
	}
	p := b.get(e.authURL(ar))
	label := "Continue with " + c.Name
	if p.status != http.StatusOK || !strings.Contains(p.body, label) {
		t.Fatalf("login page: %d, no %q: %.1500s", p.status, label, p.body)
	}
	var button string
	for _, h := range hrefs(p.body) {
		if strings.Contains(h, "/connect/"+c.ID+"?") {
			button = h
		}
	}
	if button == "" {
		t.Fatalf("no link for connector %q on the login page", c.ID)
	}
	u, err := p.url.Parse(button)
	if err != nil {
		t.Fatal(err)
	}
	code := codeFrom(t, b.get(u.String()))
	return e.idClaims(e.exchange(code, ar).IDToken)
}

// docSection returns the text from heading to the next "## " heading.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, heading+"\n")
	if !ok {
		t.Fatalf("docs/plugins.md has no %q", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// fencedBlock returns the one ```lang block of a section.
func fencedBlock(t *testing.T, section, lang string) string {
	t.Helper()
	parts := strings.Split(section, "```"+lang+"\n")
	if len(parts) != 2 {
		t.Fatalf("want one ```%s block in the section, found %d", lang, len(parts)-1)
	}
	block, _, ok := strings.Cut(parts[1], "```")
	if !ok {
		t.Fatalf("unterminated ```%s block", lang)
	}
	return block
}

// setYAMLValue replaces the value of the one line "key: value".
func setYAMLValue(t *testing.T, doc, key, value string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(\s*(?:- )?` + regexp.QuoteMeta(key) + `:) .*$`)
	if n := len(re.FindAllString(doc, -1)); n != 1 {
		t.Fatalf("the YAML of docs/plugins.md has %d %q lines, want 1", n, key)
	}
	return re.ReplaceAllStringFunc(doc, func(line string) string {
		return re.FindStringSubmatch(line)[1] + " " + value
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
