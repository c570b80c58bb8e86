package broker

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

// brokerPages are the broker's own pages; the layout and the error page
// are the page kit's.
var brokerPages = []string{"login.html", "login_mfa.html", "home.html", "logged_out.html", "logout_confirm.html"}

// loadPages checks the theme and parses the broker's pages with the page
// kit, each replaced by the file of the same name in cfg.TemplateDir when
// there is one.
func loadPages(cfg Config, secure bool) (*pagekit.Pages, error) {
	fsys, err := fs.Sub(templateFS, "templates")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return pagekit.Load(pagekit.Options{Theme: cfg.Theme, Dir: cfg.TemplateDir, Secure: secure, Logger: cfg.Logger},
		pagekit.Family{FS: fsys, Pages: brokerPages})
}

// LoadPages loads another package's pages (broker/federation's) with the
// page kit, in the broker's theme, template directory and security
// headers, so that they look like the broker's own.
func (s *Server) LoadPages(f pagekit.Family) (*pagekit.Pages, error) {
	return s.pages.Load(f)
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
type PageLink = pagekit.Link

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
	MFA     *secondStepData // the second step of a sign-in (login_mfa.html)
	Passkey *passkeyForm    // "Sign in with a passkey" (login.html; nil without passkeys)
	Theme   Theme           // set by renderPage
}

// setPageHeaders sets the security headers of every HTML page.
func (s *Server) setPageHeaders(w http.ResponseWriter) { s.pages.SetHeaders(w) }

func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	data.Theme = s.pages.Theme()
	s.pages.Render(w, r, status, name, data)
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, message string, links ...PageLink) {
	s.RenderMessage(w, r, status, title, message, "", links...)
}

// RenderMessage answers with the error page of every page (the page
// kit's), in the broker's theme: a title, the message, an optional detail
// paragraph and links (the way on).
func (s *Server) RenderMessage(w http.ResponseWriter, r *http.Request, status int, title, message, detail string, links ...PageLink) {
	s.pages.Error(w, r, status, pagekit.ErrorData{Title: title, Message: message, Detail: detail, Links: links})
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
		Title:   s.pages.Theme().ProductName + " sign-in",
		Message: "This is the sign-in service of " + s.pages.Theme().ProductName + ". There is nothing to do here: open the application you want to use and sign in there.",
	}
	for _, l := range links {
		data.Links = append(data.Links, pageButton(l))
	}
	s.renderPage(w, r, http.StatusOK, "home.html", data)
}
