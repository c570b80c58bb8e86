package pagekit

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// family is a page family of two pages: one that renders, one whose
// template fails when executed.
func family() Family {
	return Family{
		FS: fstest.MapFS{
			"hello.html":  {Data: []byte(`{{template "head" .}}<p>Hello {{.Name}}</p>{{template "foot" .}}`)},
			"broken.html": {Data: []byte(`{{template "head" .}}<p>half a page</p>{{.Missing.Field}}{{template "foot" .}}`)},
		},
		Pages: []string{"hello.html", "broken.html"},
	}
}

type data struct {
	Title, Name string
	Theme       Theme
}

func TestThemeCheck(t *testing.T) {
	for _, good := range []string{"#abc", "#A0b1C2", "rebeccapurple", ""} {
		if err := (Theme{PrimaryColor: good}).WithDefaults().Check(); err != nil {
			t.Errorf("colour %q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"red;} body{display:none", "url(x)", "#12345", "#1234567", "red; background: url(x)", "rgb(1,2,3)"} {
		err := Theme{PrimaryColor: bad}.Check()
		if !errors.Is(err, ErrThemeColour) {
			t.Errorf("colour %q: %v, want ErrThemeColour", bad, err)
		}
		if _, err := Load(Options{Theme: Theme{PrimaryColor: bad}}, family()); !errors.Is(err, ErrThemeColour) {
			t.Errorf("Load with colour %q: %v, want ErrThemeColour", bad, err)
		}
	}
	if got := (Theme{}).WithDefaults(); got.ProductName != DefaultProductName || got.PrimaryColor != DefaultPrimaryColor {
		t.Errorf("defaults %+v", got)
	}
}

func TestRenderInTheLayout(t *testing.T) {
	p, err := Load(Options{Theme: Theme{ProductName: "Acme <ID>", PrimaryColor: "#123456"}}, family())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Render(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusTeapot, "hello.html", data{Title: "Hi", Name: "<b>", Theme: p.Theme()})
	body := rec.Body.String()
	if rec.Code != http.StatusTeapot {
		t.Fatalf("status %d", rec.Code)
	}
	for _, want := range []string{"<!doctype html>", "<title>Hi · Acme &lt;ID&gt;</title>", "--primary: #123456;", "<p>Hello &lt;b&gt;</p>", "</html>"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}

	rec = httptest.NewRecorder()
	p.Error(rec, httptest.NewRequest(http.MethodHead, "/", nil), http.StatusBadRequest, ErrorData{Title: "Oops", Message: "m"})
	if rec.Code != http.StatusBadRequest || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "0" {
		t.Errorf("HEAD of the error page: %d, %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
}

// A page whose template fails half-way sends nothing of it: a plain 500.
func TestRenderFailureSendsNoHalfPage(t *testing.T) {
	p, err := Load(Options{}, family())
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]any{"broken.html": data{Title: "x"}, "no-such.html": data{Title: "x"}} {
		rec := httptest.NewRecorder()
		p.Render(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, name, d)
		if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "half a page") {
			t.Errorf("%s: %d %q", name, rec.Code, rec.Body.String())
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: the 500 lacks the pages' headers", name)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	headers := func(o Options) http.Header {
		p, err := Load(o, family())
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.Error(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusNotFound, ErrorData{Title: "t", Message: "m"})
		return rec.Header()
	}
	h := headers(Options{})
	for name, want := range map[string]string{
		"Content-Security-Policy":   "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; base-uri 'none'; frame-ancestors 'none'",
		"X-Frame-Options":           "DENY",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"Cache-Control":             "no-store",
		"Content-Type":              "text/html; charset=utf-8",
		"Strict-Transport-Security": "",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := headers(Options{Secure: true}).Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("https pages: HSTS %q", got)
	}
	if got := headers(Options{FormActionSelf: true}).Get("Content-Security-Policy"); !strings.HasSuffix(got, "; form-action 'self'") {
		t.Errorf("FormActionSelf: CSP %q", got)
	}
	// A logo on an http host the operator named loads; no other http image does.
	csp := headers(Options{Theme: Theme{LogoURL: "http://logos.example:8080/l.png"}}).Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: https: http://logos.example:8080;") {
		t.Errorf("http logo: CSP %q", csp)
	}
}

// An operator's file of the same name replaces a template, the layout
// included, for every page; a layout that does not define "head" and
// "foot" (broker/accounts' old whole-page layout.html) is refused at load,
// not with a broken page later.
func TestOperatorTemplates(t *testing.T) {
	dir := t.TempDir()
	layout, err := os.ReadFile("templates/layout.html")
	if err != nil {
		t.Fatal(err)
	}
	custom := strings.Replace(string(layout), "<head>", `<head><meta name="operator" content="yes">`, 1)
	if err := os.WriteFile(filepath.Join(dir, "layout.html"), []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.html"), []byte(`{{template "head" .}}<p>Howdy</p>{{template "foot" .}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(Options{Theme: Theme{TemplateDir: dir}}, family())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hello.html", ErrorPage} {
		rec := httptest.NewRecorder()
		p.Render(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, name, ErrorData{Title: "t", Theme: p.Theme()})
		if !strings.Contains(rec.Body.String(), `<meta name="operator" content="yes">`) {
			t.Errorf("%s is not in the operator's layout: %s", name, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	p.Render(rec, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, "hello.html", data{Title: "t"})
	if !strings.Contains(rec.Body.String(), "Howdy") {
		t.Errorf("the operator's hello.html is not used: %s", rec.Body.String())
	}

	whole := `<!doctype html><html><body>{{template "content" .}}</body></html>`
	if err := os.WriteFile(filepath.Join(dir, "layout.html"), []byte(whole), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Options{Dir: dir}, family()); err == nil || !strings.Contains(err.Error(), `"head"`) {
		t.Errorf("a layout without head and foot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "layout.html"), []byte(`{{define "head"}}{{if}}{{end}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Options{Dir: dir}, family()); err == nil {
		t.Error("a layout that does not parse was accepted")
	}
}
