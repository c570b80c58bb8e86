package broker

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Messages of the login form. Unknown e-mail and wrong password get the
// same one, so the form does not tell which accounts exist.
const (
	msgBadCredentials = "The e-mail address or password is incorrect."
	msgInactive       = "This account is not activated yet. Follow the link in the activation e-mail first."
	msgDisabled       = "This account has been disabled. Contact your administrator."
	msgUnusable       = "The e-mail address or password contains a character that can't be used here (a NUL byte, or text that is not valid UTF-8)."
)

// rateLimitedMessage answers an attempt over a limit of the login form.
func rateLimitedMessage(secs int) string {
	wait := strconv.Itoa(secs) + " seconds"
	switch {
	case secs == 1:
		wait = "1 second"
	case secs >= 120:
		wait = strconv.Itoa((secs+59)/60) + " minutes"
	}
	return "Too many sign-in attempts. Try again in " + wait + "."
}

// handleLogin serves the login page (GET) and checks e-mail and password
// of local accounts (POST). The POST is protected against CSRF by
// http.CrossOriginProtection (see routes) and by the pending login being
// bound to this browser's cookie.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodGet {
		loginID := r.URL.Query().Get("login")
		if _, err := s.PendingLogin(r, loginID); err != nil {
			s.renderExpiredLogin(w, r, err)
			return
		}
		s.renderLogin(w, r, http.StatusOK, loginID, "", "")
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Sign-in failed", "The form could not be read.")
		return
	}
	loginID := r.PostForm.Get("login")
	email := strings.TrimSpace(r.PostForm.Get("email"))
	pw := r.PostForm.Get("password")
	if _, err := s.PendingLogin(r, loginID); err != nil {
		s.renderExpiredLogin(w, r, err)
		return
	}
	// A NUL byte or invalid UTF-8 is nobody's address or password: no
	// column holds it, so it is refused before it counts as an attempt.
	if !usableText(email) || !usableText(pw) {
		if !usableText(email) {
			email = "" // not shown again
		}
		s.renderLogin(w, r, http.StatusBadRequest, loginID, email, msgUnusable)
		return
	}
	if email == "" || pw == "" {
		s.renderLogin(w, r, http.StatusBadRequest, loginID, email, "Enter your e-mail address and password.")
		return
	}
	account := strings.ToLower(email)
	lim := s.loginLimiter()
	if lim != nil {
		ok, retry, err := lim.Allow(ctx, "login", account, clientIP(r))
		if err != nil {
			s.log.ErrorContext(ctx, "login limiter", "err", err)
		} else if !ok {
			secs := max(1, int((retry+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			s.renderLogin(w, r, http.StatusTooManyRequests, loginID, email, rateLimitedMessage(secs))
			return
		}
	}

	user, err := s.cfg.Store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.ErrorContext(ctx, "login: load user", "err", err)
		s.renderLogin(w, r, http.StatusServiceUnavailable, loginID, email, "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	if err != nil {
		user = nil // unknown e-mail: a dummy verification, same time as a wrong password
	}
	ok, err := s.verifyPassword(ctx, user, pw)
	if ctx.Err() != nil {
		return // the client gave up while waiting for a verification slot
	}
	if err != nil {
		s.log.ErrorContext(ctx, "login: malformed password hash", "user", user.ID, "err", err)
	}
	if !ok {
		s.renderLogin(w, r, http.StatusUnauthorized, loginID, email, msgBadCredentials)
		return
	}
	switch {
	case user.Disabled:
		s.renderLogin(w, r, http.StatusForbidden, loginID, email, msgDisabled)
		return
	case !user.Active:
		s.renderLogin(w, r, http.StatusForbidden, loginID, email, msgInactive)
		return
	}
	if lim != nil {
		s.loginSucceeded(ctx, lim, account, clientIP(r))
	}
	s.rehashPassword(ctx, user, pw)
	s.CompleteLogin(w, r, loginID, user.ID, "local", []string{"pwd"})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, loginID, email, errMsg string) {
	data := pageData{
		Title:   "Sign in",
		Action:  s.url(pathLogin),
		LoginID: loginID,
		Email:   email,
		Error:   errMsg,
	}
	s.mu.RLock()
	for _, o := range s.loginOptions {
		data.Buttons = append(data.Buttons, pageButton{Label: o.Label, URL: o.URL(loginID)})
	}
	for _, l := range s.loginLinks {
		href := l.Href
		if l.WithLogin {
			sep := "?"
			if strings.Contains(href, "?") {
				sep = "&"
			}
			href += sep + "login=" + url.QueryEscape(loginID)
		}
		data.Links = append(data.Links, pageButton{Label: l.Label, URL: href})
	}
	s.mu.RUnlock()
	s.renderPage(w, r, status, "login.html", data)
}

// usableText reports whether v is text a form field may hold: valid UTF-8
// without NUL bytes.
func usableText(v string) bool { return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 }

// clientIP is the host of r.RemoteAddr. The broker reads no forwarding
// headers itself: ops.Wrap's trusted-proxy middleware, when configured, has
// already replaced RemoteAddr with the client's address.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
