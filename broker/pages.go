package broker

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

// loadTemplates parses the embedded templates, then the *.html of dir (if
// any), whose definitions replace the embedded ones of the same name.
func loadTemplates(dir string) (*template.Template, error) {
	t, err := template.New("").ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse embedded templates: %w", err)
	}
	if dir == "" {
		return t, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil {
		return nil, fmt.Errorf("template dir: %w", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read template: %w", err)
		}
		if _, err := t.New(filepath.Base(f)).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("parse template %s: %w", f, err)
		}
	}
	return t, nil
}

// LoginOption is a "Continue with …" button on the login page (an upstream
// connector). URL returns where the button goes for a pending login id;
// ID also matches the idp_hint authorization parameter, which skips the
// login page and goes straight to URL.
type LoginOption struct {
	ID    string
	Label string
	URL   func(loginID string) string
	// Start, when set, starts an idp_hint login at once, saving the
	// browser the trip through URL: it gets the pending login before it
	// is stored, may fill in its connector fields (ConnectorID,
	// UpstreamStateHash, ConnectorState) and set cookies, and returns
	// where to send the browser. The broker then stores the pending
	// login. When Start fails the broker logs it and sends the browser to
	// URL, which tries again and shows what went wrong.
	Start func(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin) (string, error)
}

// LoginLink is a link under the login form ("Create account", "Forgot
// password?"). When WithLogin is set the pending login id is appended as
// ?login=ID (or &login=ID) so the page can return to the sign-in.
type LoginLink struct {
	Label     string
	Href      string
	WithLogin bool
}

func (s *Server) loginOption(id string) (LoginOption, bool) {
	for _, o := range s.cfg.LoginOptions {
		if o.ID == id {
			return o, true
		}
	}
	return LoginOption{}, false
}

type pageButton struct{ Label, URL string }

// PageLink is a link on a message page (Server.RenderMessage).
type PageLink struct{ Label, URL string }

// AccountPages are the account pages the broker's own pages link to
// (Config.AccountPages), when local accounts are served: the landing page and
// the "start from your application" pages link to Account, a login refused
// because the account is not activated yet links to Resend.
type AccountPages struct {
	Account string // the account page
	Resend  string // the form that sends a new activation link
}

func (s *Server) accounts() AccountPages { return s.cfg.AccountPages }

type hiddenField struct{ Name, Value string }

// pageData is what every template gets.
type pageData struct {
	Title   string
	Message string
	Error   string
	Notice  string // why the user is on the page (a new sign-in asked for)
	Detail  string // more about an error, for the user or the developer
	LoginID string
	Email   string
	Action  string
	Buttons []pageButton
	Links   []pageButton
	Hidden  []hiddenField
	Theme   Theme // set by renderPage
}

// setPageHeaders sets the security headers of every HTML page.
func (s *Server) setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	if s.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	data.Theme = s.cfg.Theme
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "template", name, "err", err)
		s.setPageHeaders(w)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<!doctype html><title>Error</title><p>Something went wrong.</p>\n"))
		return
	}
	s.setPageHeaders(w)
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, message string, links ...PageLink) {
	s.RenderMessage(w, r, status, title, message, "", links...)
}

// RenderMessage answers with the broker's error page, in its layout and
// theme: a title, the message, an optional detail paragraph and links (the
// way on). Other packages (federation) use it so that every error page
// looks the same.
func (s *Server) RenderMessage(w http.ResponseWriter, r *http.Request, status int, title, message, detail string, links ...PageLink) {
	data := pageData{Title: title, Message: message, Detail: detail}
	for _, l := range links {
		data.Links = append(data.Links, pageButton(l))
	}
	s.renderPage(w, r, status, "error.html", data)
}

// handleHome serves the issuer's own address: a person who opens it (or
// types the host) learns what this is and where to go, a developer finds
// the discovery document.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	var links []PageLink
	if acc := s.accounts().Account; acc != "" {
		links = append(links, PageLink{Label: "Manage your account", URL: acc})
	}
	links = append(links, PageLink{Label: "OpenID Connect discovery (for developers)", URL: s.url(pathDiscovery)})
	data := pageData{
		Title:   s.cfg.Theme.ProductName + " sign-in",
		Message: "This is the sign-in service of " + s.cfg.Theme.ProductName + ". There is nothing to do here: open the application you want to use and sign in there.",
	}
	for _, l := range links {
		data.Links = append(data.Links, pageButton(l))
	}
	s.renderPage(w, r, http.StatusOK, "home.html", data)
}
