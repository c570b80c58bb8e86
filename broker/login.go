package broker

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
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

// allowAttempt asks the login limits (per account and client IP) for one
// more sign-in attempt on account: a password, or a second-factor code. A
// refused attempt is answered through fail, with 429 and Retry-After. A
// limiter that fails lets the attempt through (logged).
func (s *Server) allowAttempt(w http.ResponseWriter, r *http.Request, account string, fail func(status int, msg string)) bool {
	lim := s.cfg.LoginLimiter
	if lim == nil {
		return true
	}
	ok, retry, err := lim.Allow(r.Context(), "login", account, clientIP(r))
	if err != nil {
		s.log.ErrorContext(r.Context(), "login limiter", "err", err)
		return true
	}
	if !ok {
		secs := max(1, int((retry+time.Second-1)/time.Second))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		fail(http.StatusTooManyRequests, rateLimitedMessage(secs))
	}
	return ok
}

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
		if loginID == "" {
			s.renderStartFromApp(w, r)
			return
		}
		p, err := s.PendingLogin(r, loginID)
		if err != nil {
			s.renderExpiredLogin(w, r, err)
			return
		}
		notice, email := s.reauthContext(r, p)
		s.renderLogin(w, r, http.StatusOK, loginID, email, "", notice)
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
	p, err := s.PendingLogin(r, loginID)
	if err != nil {
		s.renderExpiredLogin(w, r, err)
		return
	}
	// The form shown again keeps its re-authentication notice (worked
	// out only then: a successful login does not need it).
	render := func(status int, email, errMsg string) {
		notice, _ := s.reauthContext(r, p)
		s.renderLogin(w, r, status, loginID, email, errMsg, notice)
	}
	// A NUL byte or invalid UTF-8 is nobody's address or password: no
	// column holds it, so it is refused before it counts as an attempt.
	if !usableText(email) || !usableText(pw) {
		if !usableText(email) {
			email = "" // not shown again
		}
		render(http.StatusBadRequest, email, msgUnusable)
		return
	}
	if email == "" || pw == "" {
		render(http.StatusBadRequest, email, "Enter your e-mail address and password.")
		return
	}
	if !s.allowAttempt(w, r, strings.ToLower(email), func(status int, msg string) { render(status, email, msg) }) {
		return
	}

	user, err := s.sessions.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.ErrorContext(ctx, "login: load user", "err", err)
		render(http.StatusServiceUnavailable, email, "Sign-in is temporarily unavailable. Please try again.")
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
		render(http.StatusUnauthorized, email, msgBadCredentials)
		return
	}
	switch {
	case user.Disabled:
		render(http.StatusForbidden, email, msgDisabled)
		return
	case !user.Active:
		render(http.StatusForbidden, email, msgInactive)
		return
	}
	// The login limits are cleared when the sign-in is complete (here, or
	// after the second step): a password alone that leads to a second step
	// does not reset the count of wrong codes.
	s.rehashPassword(ctx, user, pw)
	s.afterFirstFactor(w, r, loginID, p, user, []string{"pwd"})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, loginID, email, errMsg, notice string) {
	data := pageData{
		Title:   "Sign in",
		Action:  s.url(pathLogin),
		LoginID: loginID,
		Email:   email,
		Error:   errMsg,
		Notice:  notice,
	}
	if errMsg == msgInactive {
		if resend := s.accounts().Resend; resend != "" {
			data.Links = append(data.Links, pageButton{Label: "Send a new activation link", URL: withLogin(resend, loginID)})
		}
	}
	for _, o := range s.cfg.LoginOptions {
		data.Buttons = append(data.Buttons, pageButton{Label: o.Label, URL: o.URL(loginID)})
	}
	for _, l := range s.cfg.LoginLinks {
		href := l.Href
		if l.WithLogin {
			href = withLogin(href, loginID)
		}
		data.Links = append(data.Links, pageButton{Label: l.Label, URL: href})
	}
	data.Passkey, w = s.passkeyForm(w, r, loginID)
	s.renderPage(w, r, status, "login.html", data)
}

// withLogin appends the pending login id to href (?login=ID or &login=ID),
// so that the page it links to can return to the sign-in.
func withLogin(href, loginID string) string {
	sep := "?"
	if strings.Contains(href, "?") {
		sep = "&"
	}
	return href + sep + "login=" + url.QueryEscape(loginID)
}

// Notices of a login page that asks for a new sign-in (prompt=login,
// max_age): the user may already be signed in and wonder why.
const (
	msgReauthPrompt = "Please sign in again to continue: the application asked you to confirm that it's you."
	msgReauthMaxAge = "Please sign in again to continue: the application needs a recent sign-in, and yours is older."
)

// reauthContext says why a login page of the pending login p is shown to
// a user who may be signed in already, and which e-mail address to fill in:
// the signed-in user's when the request asks for a new sign-in
// (prompt=login, or max_age with a sign-in too old), else the request's
// login_hint when it looks like an address.
func (s *Server) reauthContext(r *http.Request, p *storage.PendingLogin) (notice, email string) {
	form, err := url.ParseQuery(p.Form)
	if err != nil {
		return "", ""
	}
	force, maxAge := LoginFreshness(form)
	if hint := strings.TrimSpace(form.Get("login_hint")); len(hint) <= 254 && usableText(hint) && strings.Contains(hint, "@") {
		email = hint
	}
	if !force && maxAge == nil {
		return "", email
	}
	_, user, err := s.browserSession(r)
	switch {
	case err == nil && user != nil:
		if user.Email != "" {
			email = user.Email
		}
	case !force:
		return "", email // max_age without a session: a first sign-in
	}
	if slices.Contains(strings.Fields(form.Get("prompt")), "login") {
		return msgReauthPrompt, email
	}
	return msgReauthMaxAge, email // max_age (force: max_age=0)
}

// StartLinks are the ways on from a page that cannot go on with a
// sign-in (none started, or one that expired): the account page, when
// local accounts are mounted, and the broker's landing page.
func (s *Server) StartLinks() []PageLink {
	var links []PageLink
	if acc := s.accounts().Account; acc != "" {
		links = append(links, PageLink{Label: "Manage your account", URL: acc})
	}
	return append(links, PageLink{Label: "About this sign-in service", URL: s.url("/")})
}

// renderStartFromApp answers the login page opened without a pending login
// (a bookmark, a link copied from a log): sign-in starts at an application.
func (s *Server) renderStartFromApp(w http.ResponseWriter, r *http.Request) {
	links := s.StartLinks()
	s.RenderMessage(w, r, http.StatusBadRequest, "Start from your application",
		"This sign-in page is opened by an application: open the application you want to use and choose \"Sign in\" there.",
		"Developers: send the browser to the authorization endpoint ("+s.url(pathAuth)+") with your client's parameters; the broker then opens this page with a sign-in of its own.",
		links...)
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
