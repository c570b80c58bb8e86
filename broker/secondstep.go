package broker

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// MFA policies (Config.MFA, accounts.mfa).
const (
	MFAOff      = "off"      // second factors are neither offered nor asked for
	MFAOptional = "optional" // a user who enrolled one is asked for it
	MFARequired = "required" // every local user needs one: enrol after the password
)

const (
	pathSecondStep = "/login/mfa"
	msgWrongCode   = "That code is not correct, or it was used already. Enter the current code from your authenticator app, or one of your recovery codes."
)

// mfaOn reports whether second factors take part in local sign-ins.
func (s *Server) mfaOn() bool { return s.cfg.Factors != nil && s.cfg.MFA != MFAOff }

// mfaEnforced reports whether the sign-in of the pending login p must end
// with a second factor whatever the user enrolled: the policy requires it
// or the client does (--require-mfa).
func (s *Server) mfaEnforced(ctx context.Context, clientID string) bool {
	if s.cfg.MFA == MFARequired {
		return true
	}
	return s.clientRequiresMFA(ctx, clientID)
}

// clientRequiresMFA reports whether the client was registered with
// --require-mfa (an unknown client does not).
func (s *Server) clientRequiresMFA(ctx context.Context, clientID string) bool {
	if clientID == "" {
		return false
	}
	c, err := s.cfg.Store.LookupClient(ctx, clientID)
	return err == nil && c.RequireMFA
}

// withoutRequiredMFA reports whether the broker session bs lacks the
// second factor its client requires (--require-mfa): a federated session
// whose upstream reported none (federated logins are never asked for a
// factor of ours), or a local one when the broker asks none
// (accounts.mfa off). Such a client gets access_denied, never a code at
// the password level.
func (s *Server) withoutRequiredMFA(ctx context.Context, bs *storage.BrowserSession, clientID string) bool {
	return mfa.Level(mfa.ACR(bs.AMR)) < 2 && s.clientRequiresMFA(ctx, clientID)
}

// afterFirstFactor goes on from a local sign-in that proved amr for user
// (a password, or for a step-up the session's methods): to the second
// step when the user has a second factor, to enrolment when one is
// enforced and the user has none, else straight to CompleteLogin.
func (s *Server) afterFirstFactor(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin, user *storage.User, amr []string) {
	ctx := r.Context()
	complete := func() {
		if lim := s.cfg.LoginLimiter; lim != nil {
			s.loginSucceeded(ctx, lim, limitAccount(user), clientIP(r))
		}
		s.CompleteLogin(w, r, loginID, user.ID, "local", amr)
	}
	if !s.mfaOn() {
		complete()
		return
	}
	has, err := s.cfg.Factors.HasFactor(ctx, user.ID, "")
	if err != nil {
		s.log.ErrorContext(ctx, "login: second factors", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	enrol := !has && s.mfaEnforced(ctx, p.ClientID)
	if !has && !enrol {
		complete()
		return
	}
	st := &storage.LoginStep{LoginID: p.ID, UserID: user.ID, AMR: strings.Join(amr, " "), Enrol: enrol, ExpiresAt: p.ExpiresAt}
	if err := s.cfg.Store.PutLoginStep(ctx, st); err != nil {
		s.log.ErrorContext(ctx, "login: record the second step", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	http.Redirect(w, r, s.url(pathSecondStep)+"?login="+url.QueryEscape(loginID), http.StatusSeeOther)
}

// secondStepData is what the second-step page shows.
type secondStepData struct {
	Enrol    bool         // enrol a first factor (accounts.mfa: required)
	FactorID string       // the authenticator being enrolled
	Secret   string       // its key, as text
	QR       template.URL // its QR code (a data: URL the broker made)
	Codes    []string     // recovery codes, shown once after enrolment
	// What the page asking for the second factor offers (codeStep):
	App  bool // the code field is for the authenticator app's code
	Code bool // a code field at all: an app, or recovery codes
}

// handleSecondStep serves the second step of a local sign-in: the code
// form (GET), checking a code (POST), and the enrolment of a first
// authenticator when one is required. Everything hangs on the pending
// login of this browser and its stored step: without a password step
// done in this browser there is nothing to complete.
func (s *Server) handleSecondStep(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, r, http.StatusBadRequest, "Sign-in failed", "The form could not be read.")
			return
		}
	}
	loginID := r.FormValue("login")
	step, err := s.SecondStep(r, loginID)
	switch {
	case errors.Is(err, errNoSecondStep):
		// No password step in this browser: start over.
		http.Redirect(w, r, s.url(pathLogin)+"?login="+url.QueryEscape(loginID), http.StatusSeeOther)
		return
	case err != nil:
		s.renderExpiredLogin(w, r, err)
		return
	}
	p, st, user := step.pending, step.row, step.User
	amr := strings.Fields(st.AMR)
	render := func(status int, d secondStepData, errMsg string) {
		if !d.Enrol && d.Codes == nil {
			s.renderFactorStep(w, r, status, loginID, user, errMsg)
			return
		}
		title := "Set up two-step verification"
		if d.Codes != nil {
			title = "Save your recovery codes"
		}
		data := pageData{Title: title, Action: s.url(pathSecondStep), LoginID: loginID, Email: user.Email, Error: errMsg, MFA: &d}
		s.renderPage(w, r, status, "login_mfa.html", data)
	}
	if r.Method != http.MethodPost {
		if st.Enrol {
			s.startLoginEnrolment(w, r, user, render)
			return
		}
		render(http.StatusOK, secondStepData{}, "")
		return
	}
	if st.Enrol {
		s.confirmLoginEnrolment(w, r, loginID, p, st, user, render)
		return
	}
	if slices.Contains(amr, "mfa") {
		// Enrolled during this sign-in (the recovery codes were shown):
		// the button that continues.
		_ = s.cfg.Store.DeleteLoginStep(ctx, p.ID)
		s.CompleteLogin(w, r, loginID, user.ID, "local", amr)
		return
	}
	method, ok := s.checkCode(w, r, user, r.PostForm.Get("code"), func(status int, msg string) { render(status, secondStepData{}, msg) })
	if !ok {
		return
	}
	s.CompleteSecondStep(w, r, step, method)
}

// renderFactorStep renders the page that asks user for a second factor:
// the code field when the user has an authenticator app (its code, or a
// recovery code) or only recovery codes left; the passkey when the user
// has one. A user whose only factor is a passkey is offered the passkey
// alone, and the page says so.
func (s *Server) renderFactorStep(w http.ResponseWriter, r *http.Request, status int, loginID string, user *storage.User, errMsg string) {
	ctx := r.Context()
	d := secondStepData{}
	passkeys := false
	fs, err := s.cfg.Factors.Factors(ctx, user.ID)
	if err == nil {
		for _, f := range fs {
			d.App = d.App || f.Kind == storage.FactorTOTP
			passkeys = passkeys || f.Kind == storage.FactorPasskey
		}
		var n int
		if n, err = s.cfg.Factors.UnusedRecoveryCodes(ctx, user.ID); n > 0 {
			d.Code = true
		}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "login: second factors", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	d.Code = d.Code || d.App
	data := pageData{Title: "Enter your code", Action: s.url(pathSecondStep), LoginID: loginID, Email: user.Email, Error: errMsg, MFA: &d}
	if passkeys {
		data.Passkey, w = s.passkeyForm(w, r, loginID)
	}
	switch {
	case data.Passkey == nil:
		// No passkey to offer (passkeys turned off since): the code
		// field, so that the page is never without a way on.
		d.Code = true
	case !d.App:
		data.Title = "Use your passkey"
	}
	s.renderPage(w, r, status, "login_mfa.html", data)
}

// errNoSecondStep: the pending login is this browser's but waits for no
// second step (no password step was done in this browser).
var errNoSecondStep = fmt.Errorf("no second step: %w", storage.ErrNotFound)

// SecondStep is a sign-in between its factors: the pending login LoginID
// of this browser proved FirstAMR for User and waits for a second factor
// (or, Enrol, for the user to set one up first).
type SecondStep struct {
	LoginID  string
	User     *storage.User
	FirstAMR []string
	Enrol    bool

	pending *storage.PendingLogin
	row     *storage.LoginStep
}

// SecondStep loads the second step of the pending login loginID of this
// browser, for a handler that verifies another kind of factor (a passkey)
// and then calls CompleteSecondStep. The error wraps storage.ErrNotFound
// when the pending login is gone, expired or another browser's, or waits
// for no second step.
func (s *Server) SecondStep(r *http.Request, loginID string) (*SecondStep, error) {
	ctx := r.Context()
	p, err := s.PendingLogin(r, loginID)
	if err != nil {
		return nil, err
	}
	if !s.mfaOn() {
		return nil, errNoSecondStep
	}
	st, err := s.cfg.Store.GetLoginStep(ctx, p.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoSecondStep
	}
	if err != nil {
		return nil, fmt.Errorf("second step: %w", err)
	}
	user, err := s.cfg.Store.GetUser(ctx, st.UserID)
	if err != nil {
		return nil, fmt.Errorf("second step: %w", err)
	}
	return &SecondStep{LoginID: loginID, User: user, FirstAMR: strings.Fields(st.AMR), Enrol: st.Enrol, pending: p, row: st}, nil
}

// CompleteSecondStep finishes the sign-in of step after the caller has
// verified a factor of step.User that proves method (RFC 8176: "otp",
// "hwk", "swk", …): the session's amr is the first step's plus method and
// "mfa", the login limits of the account are cleared, and the original
// authorization request is answered (as CompleteLogin does, which also
// uses the pending login up: a step completes once).
func (s *Server) CompleteSecondStep(w http.ResponseWriter, r *http.Request, step *SecondStep, method string) {
	ctx := r.Context()
	if err := s.cfg.Store.DeleteLoginStep(ctx, step.pending.ID); err != nil {
		s.log.WarnContext(ctx, "second step: delete", "err", err)
	}
	if lim := s.cfg.LoginLimiter; lim != nil {
		s.loginSucceeded(ctx, lim, limitAccount(step.User), clientIP(r))
	}
	s.CompleteLogin(w, r, step.LoginID, step.User.ID, "local", mfa.WithFactor(step.FirstAMR, method))
}

// checkCode checks a second-factor code of user under the login limits
// (per account and client IP, shared with the password). It answers the
// request itself through fail (and Retry-After) when it returns false.
func (s *Server) checkCode(w http.ResponseWriter, r *http.Request, user *storage.User, code string, fail func(status int, msg string)) (string, bool) {
	ctx := r.Context()
	if !usableText(code) || strings.TrimSpace(code) == "" {
		fail(http.StatusBadRequest, "Enter the code from your authenticator app, or a recovery code.")
		return "", false
	}
	if !s.allowAttempt(w, r, limitAccount(user), fail) {
		return "", false
	}
	method, err := s.cfg.Factors.Verify(ctx, user, code)
	switch {
	case errors.Is(err, mfa.ErrWrongCode), errors.Is(err, mfa.ErrNoFactor):
		fail(http.StatusUnauthorized, msgWrongCode)
		return "", false
	case err != nil:
		s.log.ErrorContext(ctx, "login: verify second factor", "user", user.ID, "err", err)
		fail(http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again.")
		return "", false
	}
	return method, true
}

// startLoginEnrolment shows a new authenticator key to a user who must
// enrol one to sign in.
func (s *Server) startLoginEnrolment(w http.ResponseWriter, r *http.Request, user *storage.User, render func(int, secondStepData, string)) {
	e, err := s.cfg.Factors.StartTOTP(r.Context(), user)
	if err != nil {
		s.log.ErrorContext(r.Context(), "login: start enrolment", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	render(http.StatusOK, secondStepData{Enrol: true, FactorID: e.FactorID, Secret: e.Secret, QR: template.URL(e.QR)}, "")
}

// confirmLoginEnrolment confirms the authenticator enrolled during a
// sign-in with its first code (under the login limits), shows the recovery
// codes once and records that the sign-in has its second factor; the
// page's button then completes it.
func (s *Server) confirmLoginEnrolment(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin, st *storage.LoginStep, user *storage.User, render func(int, secondStepData, string)) {
	ctx := r.Context()
	id := r.PostForm.Get("factor")
	again := func(status int, msg string) {
		e, err := s.cfg.Factors.PendingTOTP(ctx, user, id)
		if err != nil {
			s.startLoginEnrolment(w, r, user, func(_ int, d secondStepData, _ string) { render(status, d, msg) })
			return
		}
		render(status, secondStepData{Enrol: true, FactorID: e.FactorID, Secret: e.Secret, QR: template.URL(e.QR)}, msg)
	}
	if has, err := s.cfg.Factors.HasFactor(ctx, user.ID, ""); err != nil || has {
		// Enrolment during a sign-in is for a user with no factor; one
		// enrolled since (another tab) is asked for instead.
		st.Enrol = false
		_ = s.cfg.Store.PutLoginStep(ctx, st)
		http.Redirect(w, r, s.url(pathSecondStep)+"?login="+url.QueryEscape(loginID), http.StatusSeeOther)
		return
	}
	// The first code counts against the login limits too.
	if !s.allowAttempt(w, r, limitAccount(user), again) {
		return
	}
	codes, err := s.cfg.Factors.ConfirmTOTP(ctx, user, id, r.PostForm.Get("code"))
	switch {
	case errors.Is(err, mfa.ErrWrongCode):
		again(http.StatusUnauthorized, "That code is not correct. Enter the current code your authenticator app shows for this account.")
		return
	case err != nil:
		s.log.ErrorContext(ctx, "login: confirm enrolment", "err", err)
		again(http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	if lim := s.cfg.LoginLimiter; lim != nil {
		s.loginSucceeded(ctx, lim, limitAccount(user), clientIP(r))
	}
	st.Enrol = false
	st.AMR = strings.Join(mfa.WithFactor(strings.Fields(st.AMR), "otp"), " ")
	if err := s.cfg.Store.PutLoginStep(ctx, st); err != nil {
		s.log.ErrorContext(ctx, "login: record the second step", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in failed", "Sign-in is temporarily unavailable. Please try again.")
		return
	}
	render(http.StatusOK, secondStepData{Codes: codes}, "")
}

// needsStepUp reports whether the browser session bs, recent enough for
// the request, is weaker than the request asks for (acr_values naming
// ACRMFA, a client that requires MFA) and can be made stronger here: a
// local session of a user who has a second factor, or who must enrol one.
// A federated session is left as it is (its upstream's amr decides), as is
// a user without a factor whose request only asks (acr_values is a wish:
// the ID token's acr says what was done).
func (s *Server) needsStepUp(ctx context.Context, bs *storage.BrowserSession, form url.Values, clientID string) (bool, error) {
	if !s.mfaOn() || bs.IDP != "local" || mfa.Level(mfa.ACR(bs.AMR)) >= 2 {
		return false, nil
	}
	enforced := s.mfaEnforced(ctx, clientID)
	if mfa.Wanted(form.Get("acr_values")) < 2 && !enforced {
		return false, nil
	}
	has, err := s.cfg.Factors.HasFactor(ctx, bs.UserID, "")
	if err != nil {
		return false, err
	}
	return has || enforced, nil
}

// limitAccount is the account key of user for the login limits: its
// e-mail address, as the password form counts it.
func limitAccount(user *storage.User) string {
	if user.Email == "" {
		return user.ID
	}
	return strings.ToLower(user.Email)
}
