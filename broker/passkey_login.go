package broker

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
)

// pathPasskeyLogin receives the answer of a passkey sign-in.
const pathPasskeyLogin = "/login/passkey"

// passkeyForm is the login page's "Sign in with a passkey" form: a
// ceremony of its own for every rendering (its challenge is used once).
type passkeyForm struct {
	Action  string
	Handle  string
	Options string
	Script  string
}

// passkeyRoutes mounts the passkey script and the sign-in answer when
// passkeys are on.
func (s *Server) passkeyRoutes(r *mux.Router) {
	if s.cfg.Passkeys == nil {
		return
	}
	r.HandleFunc(passkey.ScriptPath, passkey.ServeScript).Methods(http.MethodGet, http.MethodHead)
	r.Handle(pathPasskeyLogin, s.csrf.Handler(http.HandlerFunc(s.handlePasskeyLogin))).Methods(http.MethodPost)
}

// passkeyForm begins a sign-in ceremony for the login page of loginID and
// returns the form, with w allowed to run the passkey script; nil (and w)
// without passkeys, or when the ceremony cannot be stored (the page then
// offers the password only).
func (s *Server) passkeyForm(w http.ResponseWriter, r *http.Request, loginID string) (*passkeyForm, http.ResponseWriter) {
	pk := s.cfg.Passkeys
	if pk == nil || loginID == "" {
		return nil, w
	}
	c, err := pk.BeginLogin(r.Context(), w, r)
	if err != nil {
		s.log.ErrorContext(r.Context(), "login: begin passkey sign-in", "err", err)
		return nil, w
	}
	return &passkeyForm{Action: s.url(pathPasskeyLogin), Handle: c.Handle, Options: c.Options, Script: pk.ScriptURL()}, pk.AllowScript(w)
}

// User-facing messages of a passkey sign-in.
const (
	msgPasskeyExpired   = "The passkey request expired or was used already. Try again."
	msgPasskeyInvalid   = "The passkey could not be verified. Try again, or sign in with your password."
	msgPasskeyUnknown   = "This passkey is not registered for any account here (it may have been removed). Sign in with your password."
	msgPasskeyOtherUser = "This passkey belongs to another account. Use a passkey of the account you signed in to, or a code."
)

// handlePasskeyLogin checks the answer of a passkey sign-in (the login
// page's form, posted by passkey.js) and completes the pending login:
// no password and no second step, amr from passkey.AMR. Every attempt
// counts against the login limits (the account the answer claims, and
// the client IP) before it is verified. A failed attempt shows the login
// page again with a new challenge; nothing is stored.
func (s *Server) handlePasskeyLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pk := s.cfg.Passkeys
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Sign-in failed", "The form could not be read.")
		return
	}
	loginID := r.PostForm.Get("login")
	p, err := s.PendingLogin(r, loginID)
	if err != nil {
		s.renderExpiredLogin(w, r, err)
		return
	}
	// A pending login past its password step (a second step) is shown
	// its second-step page again, any other the login page.
	step, err := s.SecondStep(r, loginID)
	if err != nil && !errors.Is(err, errNoSecondStep) {
		s.renderExpiredLogin(w, r, err)
		return
	}
	fail := func(status int, msg string) {
		if step != nil {
			s.renderFactorStep(w, r, status, loginID, step.User, msg)
			return
		}
		notice, _ := s.reauthContext(r, p)
		s.renderLogin(w, r, status, loginID, "", msg, notice)
	}
	a, err := passkey.ParseAssertion(r.PostForm.Get("response"))
	if err != nil {
		s.log.InfoContext(ctx, "login: passkey answer refused", "err", err)
		fail(http.StatusBadRequest, msgPasskeyInvalid)
		return
	}
	account := ""
	if claimed := a.UserID(); usableText(claimed) && claimed != "" {
		if u, err := s.cfg.Store.GetUser(ctx, claimed); err == nil {
			account = limitAccount(u)
		}
	}
	lim := s.cfg.LoginLimiter
	if lim != nil {
		ok, retry, err := lim.Allow(ctx, "login", account, clientIP(r))
		if err != nil {
			s.log.ErrorContext(ctx, "login limiter", "err", err)
		} else if !ok {
			secs := max(1, int((retry+time.Second-1)/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			fail(http.StatusTooManyRequests, rateLimitedMessage(secs))
			return
		}
	}
	res, err := pk.FinishLogin(ctx, r, r.PostForm.Get("ceremony"), a)
	switch {
	case errors.Is(err, passkey.ErrExpired):
		fail(http.StatusBadRequest, msgPasskeyExpired)
		return
	case errors.Is(err, passkey.ErrUnknown):
		fail(http.StatusUnauthorized, msgPasskeyUnknown)
		return
	case errors.Is(err, passkey.ErrInvalid), errors.Is(err, passkey.ErrCounter):
		s.log.InfoContext(ctx, "login: passkey sign-in refused", "err", err)
		fail(http.StatusUnauthorized, msgPasskeyInvalid)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "login: passkey sign-in", "err", err)
		fail(http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	user := res.User
	if step != nil {
		// The second step of a password sign-in (or a step-up): the
		// passkey must be the same user's; its key is the second factor.
		if user.ID != step.User.ID {
			s.log.InfoContext(ctx, "login: another user's passkey at a second step", "user", step.User.ID, "passkey_user", user.ID)
			fail(http.StatusUnauthorized, msgPasskeyOtherUser)
			return
		}
		s.CompleteSecondStep(w, r, step, res.AMR[0])
		return
	}
	switch {
	case user.Disabled:
		fail(http.StatusForbidden, msgDisabled)
		return
	case !user.Active:
		fail(http.StatusForbidden, msgInactive)
		return
	}
	if lim != nil {
		s.loginSucceeded(ctx, lim, limitAccount(user), clientIP(r))
	}
	// A passkey with user verification is two factors: no second step.
	s.CompleteLogin(w, r, loginID, user.ID, "local", res.AMR)
}
