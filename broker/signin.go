package broker

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// A sign-in to the broker itself, with no application: the account page
// links to it when nobody is signed in. It is a pending login without a
// client (ClientID ""), whose form holds only the broker page to return
// to; completing it starts a broker session and goes back to that page,
// granting nothing to any application.

// SignInURL is a link that signs the user in to the broker (the login page,
// with every login option) and then returns to returnPath, a path of the
// broker's own pages (as linked from them: with the issuer's path). A path
// that is not the broker's is replaced by the issuer's root.
func (s *Server) SignInURL(returnPath string) string {
	return s.url(pathSignIn) + "?" + url.Values{"return_to": {s.ownPath(returnPath)}}.Encode()
}

// ownPath returns p when it is a path of the broker's pages (under the
// issuer's path, no host, no scheme), else the issuer's root path.
func (s *Server) ownPath(p string) string {
	root := s.basePath + "/"
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(p, root) || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return root
	}
	return u.RequestURI()
}

// handleSignIn starts a sign-in to the broker itself (SignInURL).
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	back := s.ownPath(r.URL.Query().Get("return_to"))
	now := time.Now().UTC().Truncate(time.Second)
	loginID := randomToken()
	p := &storage.PendingLogin{
		ID:             hashToken(loginID),
		BrowserBinding: s.browserBinding(w, r),
		Form:           url.Values{"return_to": {back}}.Encode(),
		RequestedAt:    now,
		ExpiresAt:      now.Add(s.cfg.PendingLoginLifetime),
	}
	if err := s.sessions.CreatePendingLogin(ctx, p); err != nil {
		s.log.ErrorContext(ctx, "sign-in: create pending login", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	http.Redirect(w, r, s.url(pathLogin)+"?login="+url.QueryEscape(loginID), http.StatusSeeOther)
}

// finishSignIn completes a sign-in to the broker itself: the session is
// written (using the pending login up) and the browser goes back to the
// page it came from.
func (s *Server) finishSignIn(w http.ResponseWriter, r *http.Request, p *storage.PendingLogin, ns *loginSession) {
	ctx := r.Context()
	// In one transaction, as a grant writes its login's session.
	unit, endUnit := s.tokens.WithUnit(ctx)
	defer endUnit()
	err := s.tokens.Record(unit, func(ctx context.Context) error { return ns.write(ctx, s.sessions) })
	if err == nil {
		err = s.tokens.Run(unit, nil)
	}
	if err != nil {
		if ns.gone {
			s.renderExpiredLogin(w, r, storage.ErrNotFound)
			return
		}
		s.log.ErrorContext(ctx, "sign-in: create browser session", "err", err)
		s.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.")
		return
	}
	s.setCookie(w, sessionCookie, ns.cookie, s.cfg.SessionLifetime)
	form, _ := url.ParseQuery(p.Form) // the broker stored it from url.Values.Encode
	http.Redirect(w, r, s.url(strings.TrimPrefix(s.ownPath(form.Get("return_to")), s.basePath)), http.StatusSeeOther)
}
