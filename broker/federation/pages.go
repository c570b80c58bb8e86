package federation

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

// loadPages loads the federation's pages with the page kit, in the
// broker's theme and template directory (link.html may be replaced there).
func loadPages(b *broker.Server) (*pagekit.Pages, error) {
	fsys, err := fs.Sub(templateFS, "templates")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return b.LoadPages(pagekit.Family{FS: fsys, Pages: []string{"link.html"}})
}

// errorPage is what the error template shows. Retry, when set, links back
// to the login page of the pending login.
type errorPage struct {
	Title, Message, Detail, Retry string
}

func (f *Federation) renderError(w http.ResponseWriter, r *http.Request, status int, title, message, retry string) {
	f.render(w, r, status, errorPage{Title: title, Message: message, Retry: retry})
}

// render answers with the broker's own error page (its layout and theme),
// so that a federation error looks like every other page.
func (f *Federation) render(w http.ResponseWriter, r *http.Request, status int, page errorPage) {
	var links []broker.PageLink
	if page.Retry != "" {
		links = append(links, broker.PageLink{Label: "Choose another way to sign in", URL: page.Retry})
	} else {
		links = f.broker.StartLinks() // nothing to retry: a way on all the same
	}
	f.broker.RenderMessage(w, r, status, page.Title, page.Message, page.Detail, links...)
}

// linkPage is what the link template shows.
type linkPage struct {
	Connector, Email, Action, LoginID, Token, Error, Retry string

	Title string        // set by renderLink
	Theme pagekit.Theme // set by renderLink
}

// renderLink shows the page that asks whether an existing account is the
// person's own (see askLink), in the layout of every page.
func (f *Federation) renderLink(w http.ResponseWriter, r *http.Request, status int, page linkPage) {
	page.Title, page.Theme = "Link your account", f.pages.Theme()
	f.pages.Render(w, r, status, "link.html", page)
}

// renderPendingError answers a pending login that is gone, expired or
// belongs to another browser.
func (f *Federation) renderPendingError(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, storage.ErrNotFound) {
		f.log.ErrorContext(r.Context(), "load pending login", "err", err)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", "")
		return
	}
	f.renderError(w, r, http.StatusBadRequest, "Sign-in expired",
		"This sign-in has expired, was already used or was started in another browser. Go back to the application and sign in again.", "")
}

// renderConnectorError tells the user what went wrong at the upstream, by
// the connector error the failure wraps, in the broker's words plus the
// connector's user message (connectors.UserError), if any: a connector's
// error text goes to the log only.
func (f *Federation) renderConnectorError(w http.ResponseWriter, r *http.Request, c *connector, err error, loginID string) {
	page := errorPage{Retry: f.loginPageURL(loginID), Detail: connectors.UserMessage(err)}
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, broker.ErrLoginRequired):
		status = http.StatusForbidden
		page.Title = "Sign-in method not available"
		page.Message = fmt.Sprintf("The application asked for a new sign-in, which %s cannot confirm. Please choose another way to sign in.", c.name)
	case errors.Is(err, connectors.ErrUpstreamDenied):
		status = http.StatusForbidden
		page.Title = "Sign-in cancelled"
		page.Message = fmt.Sprintf("%s did not sign you in: the sign-in was cancelled or refused there.", c.name)
	case errors.Is(err, connectors.ErrInvalidCallback):
		status = http.StatusBadRequest
		page.Title = "Sign-in could not be verified"
		page.Message = fmt.Sprintf("The answer from %s could not be verified, so you were not signed in. Please try again.", c.name)
	case errors.Is(err, connectors.ErrPolicy):
		status = http.StatusForbidden
		page.Title = "Sign-in not allowed"
		page.Message = fmt.Sprintf("Your %s account cannot be used to sign in here.", c.name)
	case errors.Is(err, connectors.ErrIdentityRevoked):
		status = http.StatusForbidden
		page.Title = "Sign-in not allowed"
		page.Message = fmt.Sprintf("Your %s account is no longer valid.", c.name)
	case errors.Is(err, plugins.ErrPluginUnavailable), errors.Is(err, plugins.ErrClosed):
		status = http.StatusServiceUnavailable
		page.Title = "Sign-in interrupted"
		page.Message = fmt.Sprintf("The sign-in with %s was interrupted by a problem on our side. Please try again.", c.name)
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
		page.Title = "Sign-in timed out"
		page.Message = fmt.Sprintf("%s took too long to answer. Please try again.", c.name)
	default:
		page.Title = "Sign-in failed"
		page.Message = fmt.Sprintf("Signing in with %s did not work. Please try again later.", c.name)
	}
	f.render(w, r, status, page)
}
