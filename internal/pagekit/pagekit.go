// Package pagekit is the one kit of every HTML page Bridgekeeper serves:
// the broker's own pages, broker/accounts' and broker/federation's. It holds
// the theme and its colour check, the layout ("head" and "foot"), the error
// page, template loading with an operator's overrides, and the security
// headers, so that every page looks and behaves the same.
package pagekit

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// Defaults of a Theme's fields.
const (
	DefaultProductName  = "Bridgekeeper"
	DefaultPrimaryColor = "#2f5bd3"
)

// Theme styles every page (and broker/accounts' e-mails).
type Theme struct {
	ProductName  string // default "Bridgekeeper"
	LogoURL      string // shown above the forms when set
	PrimaryColor string // a CSS hex colour (#rgb or #rrggbb) or colour name; default #2f5bd3
	// TemplateDir, when set, holds templates that replace the embedded
	// ones of the same name (layout.html, error.html, login.html,
	// register.html, link.html, …, mail/activate.txt, …).
	TemplateDir string
}

// ErrThemeColour is the error of a primary colour that is not a CSS
// colour the pages can hold (it goes into a style sheet).
var ErrThemeColour = errors.New("theme primary colour: want #rgb, #rrggbb or a colour name")

var colourRE = regexp.MustCompile(`^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-zA-Z]{3,20})$`)

// WithDefaults returns t with its empty fields defaulted.
func (t Theme) WithDefaults() Theme {
	if t.ProductName == "" {
		t.ProductName = DefaultProductName
	}
	if t.PrimaryColor == "" {
		t.PrimaryColor = DefaultPrimaryColor
	}
	return t
}

// Check reports a theme the pages cannot show: a primary colour that is
// not #rgb, #rrggbb or a colour name (wraps ErrThemeColour).
func (t Theme) Check() error {
	if !colourRE.MatchString(t.PrimaryColor) {
		return fmt.Errorf("%q: %w", t.PrimaryColor, ErrThemeColour)
	}
	return nil
}

// Link is a link on a page ("where to go next").
type Link struct{ Label, URL string }

// ErrorData is what error.html gets.
type ErrorData struct {
	Title   string
	Message string // what went wrong
	Detail  string // more about it, for the user or the developer ("" for none)
	Links   []Link // the ways on
	Theme   Theme  // set by Pages.Error
}

//go:embed templates/*.html
var kitFS embed.FS

// Names of the kit's own templates.
const (
	Layout    = "layout.html" // defines "head" and "foot"
	ErrorPage = "error.html"
)

// Family is one package's set of pages.
type Family struct {
	// FS holds the family's templates at its root.
	FS fs.FS
	// Shared are files every page of the family may use ({{define}}s).
	Shared []string
	// Pages are the pages, by file name: each is rendered by that name.
	Pages []string
	// Entry, when set, is the shared file executed for every page (a
	// frame around the page's {{define "content"}}); else a page is
	// executed itself.
	Entry string
}

// Options configure a family's pages.
type Options struct {
	Theme Theme
	// Dir holds the operator's templates; Theme.TemplateDir when empty.
	Dir string
	// Secure: the pages are served over https (they get HSTS).
	Secure bool
	// FormActionSelf restricts the pages' forms to post to their own
	// origin, redirects after the post included: only for pages whose
	// forms never answer with a redirect to another site (an application).
	FormActionSelf bool
	Logger         *slog.Logger
}

// Pages are a family's pages, each parsed with the layout and the
// family's shared files, plus the error page.
type Pages struct {
	opts    Options
	theme   Theme
	entry   string
	sets    map[string]*template.Template
	headers http.Header
	log     *slog.Logger
}

// Load checks the theme and parses the family's pages and the error page,
// each template replaced by the file of the same name in the operator's
// directory when there is one.
func Load(o Options, f Family) (*Pages, error) {
	theme := o.Theme.WithDefaults()
	if err := theme.Check(); err != nil {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		dir = theme.TemplateDir
	}
	read := func(fsys fs.FS, name string) (string, error) { return ReadTemplate(dir, fsys, name) }
	kit, err := fs.Sub(kitFS, "templates")
	if err != nil {
		return nil, fmt.Errorf("kit templates: %w", err)
	}
	parse := func(t *template.Template, fsys fs.FS, name string) error {
		src, err := read(fsys, name)
		if err != nil {
			return err
		}
		if _, err := t.New(name).Parse(src); err != nil {
			return fmt.Errorf("template %s: %w", name, err)
		}
		return nil
	}
	layout := template.New("")
	if err := parse(layout, kit, Layout); err != nil {
		return nil, err
	}
	for _, def := range []string{"head", "foot"} {
		if layout.Lookup(def) == nil {
			return nil, fmt.Errorf("template %s: no {{define %q}}", Layout, def)
		}
	}
	p := &Pages{opts: o, theme: theme, entry: f.Entry, sets: map[string]*template.Template{}, headers: headers(theme, o), log: o.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	errSet := template.Must(layout.Clone())
	if err := parse(errSet, kit, ErrorPage); err != nil {
		return nil, err
	}
	p.sets[ErrorPage] = errSet
	base := template.Must(layout.Clone())
	for _, name := range f.Shared {
		if err := parse(base, f.FS, name); err != nil {
			return nil, err
		}
	}
	for _, name := range f.Pages {
		set := template.Must(base.Clone())
		if err := parse(set, f.FS, name); err != nil {
			return nil, err
		}
		p.sets[name] = set
	}
	return p, nil
}

// ReadTemplate returns the template name (a slash-separated path): the
// operator's file of that name in dir when there is one, else fsys's.
func ReadTemplate(dir string, fsys fs.FS, name string) (string, error) {
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err == nil {
			return string(b), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("template %s: %w", name, err)
		}
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return string(b), nil
}

// headers are the security headers of every page.
func headers(theme Theme, o Options) http.Header {
	img := "img-src 'self' data: https:"
	if u, err := url.Parse(theme.LogoURL); err == nil && u.Scheme == "http" && u.Host != "" {
		img += " http://" + u.Host // a logo served over http (an operator's own host)
	}
	csp := "default-src 'none'; style-src 'unsafe-inline'; " + img + "; base-uri 'none'; frame-ancestors 'none'"
	if o.FormActionSelf {
		csp += "; form-action 'self'"
	}
	h := http.Header{}
	if o.Secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // links carry tokens
	return h
}

// Load loads another family's pages with p's options (theme, operator's
// directory, security headers), so that they look like p's.
func (p *Pages) Load(f Family) (*Pages, error) { return Load(p.opts, f) }

// Theme is the theme every page gets, its defaults filled in.
func (p *Pages) Theme() Theme { return p.theme }

// SetHeaders sets the security headers of every page (and its content
// type) on w.
func (p *Pages) SetHeaders(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range p.headers {
		h[k] = append([]string(nil), v...)
	}
}

// Render answers with the page name, data being what its templates get
// (with .Title and .Theme, for the layout). A template that fails is
// logged and answered with a plain 500; nothing of it is sent.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	err := p.execute(&buf, name, data)
	p.SetHeaders(w)
	if err != nil {
		p.log.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<!doctype html><title>Error</title><p>Something went wrong.</p>\n"))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = buf.WriteTo(w)
	}
}

func (p *Pages) execute(buf *bytes.Buffer, name string, data any) error {
	set, ok := p.sets[name]
	if !ok {
		return fmt.Errorf("no page %s", name)
	}
	entry := name
	if p.entry != "" && name != ErrorPage {
		entry = p.entry
	}
	if err := set.ExecuteTemplate(buf, entry, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return nil
}

// Error answers with the error page: its title, message, detail and links
// in the layout and theme of every page.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, d ErrorData) {
	d.Theme = p.theme
	p.Render(w, r, status, ErrorPage, d)
}
