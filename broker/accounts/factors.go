package accounts

import (
	"context"
	"errors"
	"html/template"
	"net/http"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// mfaView is the two-step verification part of the account pages.
type mfaView struct {
	Enabled   bool         // the user has a confirmed authenticator
	Factors   bool         // the user has a confirmed second factor of any kind: the recovery codes section
	Passkey   bool         // the user has a passkey that can re-authenticate (passkeys on)
	FactorID  string       // the authenticator being enrolled, or the one to remove
	Remaining int          // unused recovery codes
	Secret    string       // the key of an enrolment, as text
	QR        template.URL // its QR code (a data: URL the broker made)
	Codes     []string     // recovery codes, shown once
}

// factorRoutes are the two-step verification forms of the account page,
// mounted when Config.Factors is set.
func (s *Service) factorRoutes(post func(path string, h http.HandlerFunc, f form)) {
	if s.cfg.Factors == nil {
		return
	}
	f := form{"account", "Your account"}
	post("/account/mfa/totp", s.startTOTP, f)
	post("/account/mfa/totp/confirm", s.confirmTOTP, form{"account_mfa", "Set up two-step verification"})
	post("/account/mfa/totp/remove", s.removeTOTP, f)
	post("/account/mfa/recovery", s.newRecoveryCodes, f)
	if s.cfg.Passkeys != nil {
		recovery, totpRemove := s.passkeyReauths()
		post("/account/mfa/recovery/passkey", s.beginPasskeyReauth(recovery), f)
		post(recovery.finish, s.finishPasskeyReauth(recovery), f)
		post("/account/mfa/totp/remove/passkey", s.beginPasskeyReauth(totpRemove), f)
		post(totpRemove.finish, s.finishPasskeyReauth(totpRemove), f)
	}
}

// mfaView fills in the account page's two-step verification part of u.
func (s *Service) mfaView(ctx context.Context, u *storage.User) (*mfaView, error) {
	if s.cfg.Factors == nil {
		return nil, nil
	}
	fs, err := s.cfg.Factors.Factors(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	v := &mfaView{Factors: len(fs) > 0}
	for _, f := range fs {
		switch f.Kind {
		case storage.FactorTOTP:
			v.Enabled, v.FactorID = true, f.ID
		case storage.FactorPasskey:
			v.Passkey = s.cfg.Passkeys != nil
		}
	}
	if v.Factors {
		if v.Remaining, err = s.cfg.Factors.UnusedRecoveryCodes(ctx, u.ID); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// accountForm is the signed-in user and the account page for a form posted
// from it; nil when it answered the request itself (not signed in, an error).
func (s *Service) accountForm(w http.ResponseWriter, r *http.Request) (*storage.User, *page) {
	u := s.signedInUser(w, r)
	if u == nil {
		return nil, nil
	}
	p, ok := s.accountPage(w, r, u)
	if !ok {
		return nil, nil
	}
	return u, p
}

// accountPage is the account page of u with its two-step verification part.
func (s *Service) accountPage(w http.ResponseWriter, r *http.Request, u *storage.User) (*page, bool) {
	p := s.newPage(w, r, "Your account")
	p.User = u
	v, err := s.mfaView(r.Context(), u)
	if err != nil {
		s.serverError(w, r, "account: second factors", err)
		return nil, false
	}
	p.MFA = v
	if p.Passkeys, err = s.passkeyView(r.Context(), u); err != nil {
		s.serverError(w, r, "account: passkeys", err)
		return nil, false
	}
	return p, true
}

// startTOTP shows a new authenticator key (QR code and text) after the
// current password.
func (s *Service) startTOTP(w http.ResponseWriter, r *http.Request) {
	u, p := s.accountForm(w, r)
	if p == nil || !s.reauthenticate(w, r, p, u, "mfa_password", "account") {
		return
	}
	if p.MFA.Enabled {
		p.Error = "Two-step verification is already on."
		s.render(w, r, http.StatusConflict, "account", p)
		return
	}
	e, err := s.cfg.Factors.StartTOTP(r.Context(), u)
	if err != nil {
		s.serverError(w, r, "account: start TOTP", err)
		return
	}
	p.Title = "Set up two-step verification"
	p.MFA = &mfaView{FactorID: e.FactorID, Secret: e.Secret, QR: template.URL(e.QR)}
	s.render(w, r, http.StatusOK, "account_mfa", p)
}

// confirmTOTP turns the authenticator on with its first code (counted as
// a login attempt) and shows the recovery codes once.
func (s *Service) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := s.signedInUser(w, r)
	if u == nil {
		return
	}
	p := s.newPage(w, r, "Set up two-step verification")
	p.User = u
	id := r.PostFormValue("factor")
	e, err := s.cfg.Factors.PendingTOTP(ctx, u, id)
	if errors.Is(err, mfa.ErrNoFactor) {
		s.message(w, r, http.StatusBadRequest, "Start again", "", "This set-up has expired or was finished already. Start again from your account page.",
			pageLink{s.pageURL("/account", s.backOf(r)), "Go to your account"})
		return
	}
	if err != nil {
		s.serverError(w, r, "account: TOTP enrolment", err)
		return
	}
	p.MFA = &mfaView{FactorID: e.FactorID, Secret: e.Secret, QR: template.URL(e.QR)}
	if !s.allowAttempt(w, r, u) {
		return
	}
	codes, err := s.cfg.Factors.ConfirmTOTP(ctx, u, id, r.PostFormValue("code"))
	if errors.Is(err, mfa.ErrWrongCode) {
		p.Error, p.ErrorField = "That code is not correct. Enter the current code your authenticator app shows for this account.", "code"
		s.render(w, r, http.StatusUnauthorized, "account_mfa", p)
		return
	}
	if err != nil {
		s.serverError(w, r, "account: confirm TOTP", err)
		return
	}
	s.attemptSucceeded(ctx, u, r)
	s.log.InfoContext(ctx, "accounts: TOTP enrolled", "user", u.ID)
	if codes == nil {
		// The recovery codes of a passkey enrolled before stay.
		p, ok := s.accountPage(w, r, u)
		if !ok {
			return
		}
		p.Notice = "Two-step verification is on. Your recovery codes still work."
		s.render(w, r, http.StatusOK, "account", p)
		return
	}
	p.Title = "Two-step verification is on"
	p.MFA = &mfaView{Enabled: true, Codes: codes}
	s.render(w, r, http.StatusOK, "account_mfa", p)
}

// removeTOTP turns the authenticator off: the current password and a code
// (or a recovery code) first; totpRemoveReauth is the same with a passkey.
func (s *Service) removeTOTP(w http.ResponseWriter, r *http.Request) {
	u, p := s.accountForm(w, r)
	if p == nil || !s.appEnabled(w, r, p) || !s.secondFactorReauth(w, r, p, u, appReauth) {
		return
	}
	s.turnAppOff(w, r, p, u)
}

// turnAppOff removes u's authenticator app (the owner is e-mailed) and
// shows the account page saying what signing in takes now.
func (s *Service) turnAppOff(w http.ResponseWriter, r *http.Request, p *page, u *storage.User) {
	ctx := r.Context()
	if err := s.cfg.Factors.RemoveFactor(ctx, u.ID, p.MFA.FactorID); err != nil && !errors.Is(err, mfa.ErrNoFactor) {
		s.serverError(w, r, "account: remove TOTP", err)
		return
	}
	s.log.InfoContext(ctx, "accounts: TOTP removed", "user", u.ID)
	p, ok := s.accountPage(w, r, u)
	if !ok {
		return
	}
	p.Notice = "Two-step verification is off: signing in takes your password only. Your recovery codes no longer work."
	if p.Passkeys != nil && len(p.Passkeys.Keys) > 0 {
		// Recovery codes go with the last factor only.
		p.Notice = "The authenticator app was removed: signing in with your password now asks for one of your passkeys, or a recovery code."
	}
	s.render(w, r, http.StatusOK, "account", p)
}

// newRecoveryCodes replaces the recovery codes of a user with any second
// factor: the current password and a code (from the app, or a recovery
// code) first; recoveryReauthByPasskey is the same with a passkey.
func (s *Service) newRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	u, p := s.accountForm(w, r)
	if p == nil || !s.hasFactors(w, r, p) || !s.secondFactorReauth(w, r, p, u, recoveryReauth) {
		return
	}
	s.showNewRecoveryCodes(w, r, p, u)
}

// passkeyReauth is a change of the second factors a passkey confirms in
// place of a code: after the current password, a re-authentication
// ceremony bound to the user, the browser and the change.
type passkeyReauth struct {
	action   string                                                     // the ceremony's action (passkey.BeginReauth)
	password string                                                     // the form's current-password input
	finish   string                                                     // the path the ceremony's answer is posted to
	then     string                                                     // what happens then, for the ceremony page
	allowed  func(w http.ResponseWriter, r *http.Request, p *page) bool // answers the request itself when the change does not apply
	done     func(w http.ResponseWriter, r *http.Request, p *page, u *storage.User)
}

// passkeyReauths are the changes a passkey confirms.
func (s *Service) passkeyReauths() (recovery, totpRemove passkeyReauth) {
	recovery = passkeyReauth{
		action: "recovery_codes", password: recoveryReauth.password, finish: "/account/mfa/recovery/passkey/finish",
		then:    "Then your new recovery codes are shown, and the old ones stop working.",
		allowed: s.hasFactors, done: s.showNewRecoveryCodes,
	}
	totpRemove = passkeyReauth{
		action: "totp_remove", password: appReauth.password, finish: "/account/mfa/totp/remove/passkey/finish",
		then:    "Then the authenticator app is removed from your account.",
		allowed: s.appEnabled, done: s.turnAppOff,
	}
	return recovery, totpRemove
}

// beginPasskeyReauth checks the current password of the form of c (one
// attempt under the login limits) and then asks for one of the user's
// passkeys: a ceremony bound to the user, this browser and c, begun only
// after the password, so that its answer (finishPasskeyReauth) completes
// the same re-authentication as a code does.
func (s *Service) beginPasskeyReauth(c passkeyReauth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, p := s.accountForm(w, r)
		if p == nil || !c.allowed(w, r, p) {
			return
		}
		noPasskey := func() {
			p.Error = "You have no passkey. Enter a code from your authenticator app, or a recovery code."
			s.render(w, r, http.StatusBadRequest, "account", p)
		}
		if !p.MFA.Passkey {
			noPasskey()
			return
		}
		if !s.checkPassword(w, r, p, u, c.password, "account", false) {
			return
		}
		cer, err := s.cfg.Passkeys.BeginReauth(r.Context(), w, r, u, c.action)
		if errors.Is(err, passkey.ErrUnknown) {
			noPasskey() // the last one was removed meanwhile
			return
		}
		if err != nil {
			s.serverError(w, r, "account: begin passkey re-authentication", err)
			return
		}
		s.showCeremony(w, r, p, "Confirm with a passkey", cer, passkeyCeremony{Reauth: true, Action: c.finish, Then: c.then})
	}
}

// finishPasskeyReauth checks the passkey answer of beginPasskeyReauth
// (another attempt under the login limits; both cleared when it is
// right) and makes the change of c.
func (s *Service) finishPasskeyReauth(c passkeyReauth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		u, p := s.accountForm(w, r)
		if p == nil || !c.allowed(w, r, p) || !s.allowAttempt(w, r, u) {
			return
		}
		err := s.cfg.Passkeys.FinishReauth(ctx, r, u, r.PostFormValue("ceremony"), c.action, r.PostFormValue("response"))
		switch {
		case errors.Is(err, passkey.ErrExpired):
			p.Error = "The passkey request expired or was used already. Start again: your password, then your passkey."
			s.render(w, r, http.StatusBadRequest, "account", p)
			return
		case errors.Is(err, passkey.ErrUnknown), errors.Is(err, passkey.ErrInvalid), errors.Is(err, passkey.ErrCounter):
			s.log.InfoContext(ctx, "accounts: passkey re-authentication refused", "user", u.ID, "action", c.action, "err", err)
			p.Error = "The passkey could not be verified, or it is not one of yours. Start again: your password, then your passkey."
			s.render(w, r, http.StatusUnauthorized, "account", p)
			return
		case err != nil:
			s.serverError(w, r, "account: passkey re-authentication", err)
			return
		}
		s.attemptSucceeded(ctx, u, r)
		c.done(w, r, p, u)
	}
}

// showNewRecoveryCodes replaces u's recovery codes (the old ones stop
// working at once; the owner is e-mailed) and shows the new ones once.
func (s *Service) showNewRecoveryCodes(w http.ResponseWriter, r *http.Request, p *page, u *storage.User) {
	codes, err := s.cfg.Factors.NewRecoveryCodes(r.Context(), u.ID)
	if err != nil {
		s.serverError(w, r, "account: new recovery codes", err)
		return
	}
	s.log.InfoContext(r.Context(), "accounts: new recovery codes", "user", u.ID)
	p.Title = "Your new recovery codes"
	p.MFA = &mfaView{Enabled: p.MFA.Enabled, Factors: true, Codes: codes}
	s.render(w, r, http.StatusOK, "account_mfa", p)
}

// appEnabled answers the request itself (and returns false) when the
// user has no authenticator app.
func (s *Service) appEnabled(w http.ResponseWriter, r *http.Request, p *page) bool {
	if !p.MFA.Enabled {
		p.Error = "Two-step verification is not on."
		s.render(w, r, http.StatusBadRequest, "account", p)
	}
	return p.MFA.Enabled
}

// hasFactors answers the request itself (and returns false) when the
// user has no second factor, hence no recovery codes.
func (s *Service) hasFactors(w http.ResponseWriter, r *http.Request, p *page) bool {
	if !p.MFA.Factors {
		p.Error = "You have no second factor, so no recovery codes: add an authenticator app or a passkey first."
		s.render(w, r, http.StatusBadRequest, "account", p)
	}
	return p.MFA.Factors
}

// reauthFields names the inputs of a form that re-authenticates with the
// current password and a second-factor code.
type reauthFields struct{ password, code string }

var (
	appReauth      = reauthFields{"mfa_password", "mfa_code"}
	recoveryReauth = reauthFields{"recovery_password", "recovery_code"}
)

// secondFactorReauth checks the current password and a second-factor code
// (of the app, or a recovery code) of u, posted together in the inputs f:
// one attempt under the login limits, cleared only when both are right.
// It answers the request itself when it returns false.
func (s *Service) secondFactorReauth(w http.ResponseWriter, r *http.Request, p *page, u *storage.User, f reauthFields) bool {
	// One form, one attempt: checkPassword counted it.
	if !s.checkPassword(w, r, p, u, f.password, "account", false) {
		return false
	}
	_, err := s.cfg.Factors.Verify(r.Context(), u, r.PostFormValue(f.code))
	if errors.Is(err, mfa.ErrWrongCode) || errors.Is(err, mfa.ErrNoFactor) {
		p.Error, p.ErrorField = "That code is not correct, or it was used already. Enter the current code from your authenticator app, or a recovery code.", f.code
		if !p.MFA.Enabled {
			p.Error = "That recovery code is not correct, or it was used already."
		}
		s.render(w, r, http.StatusUnauthorized, "account", p)
		return false
	}
	if err != nil {
		s.serverError(w, r, "account: verify code", err)
		return false
	}
	s.attemptSucceeded(r.Context(), u, r)
	return true
}

// allowAttempt counts a code attempt of u against the login limits.
func (s *Service) allowAttempt(w http.ResponseWriter, r *http.Request, u *storage.User) bool {
	ok, retry, err := s.limiter.Allow(r.Context(), ActionLogin, u.Email, s.clientIP(r))
	if err != nil {
		s.serverError(w, r, "account: rate limit", err)
		return false
	}
	if !ok {
		s.tooMany(w, r, retry)
		return false
	}
	return true
}

func (s *Service) attemptSucceeded(ctx context.Context, u *storage.User, r *http.Request) {
	if err := s.limiter.Succeeded(ctx, ActionLogin, u.Email, s.clientIP(r)); err != nil {
		s.log.WarnContext(ctx, "accounts: clear login limit", "user", u.ID, "err", err)
	}
}

// Notices of the factor e-mail, by mfa event.
var factorNotices = map[string]string{
	mfa.EventTOTPAdded:        "An authenticator app was added to your account for two-step verification.",
	mfa.EventTOTPRemoved:      "The authenticator app was removed from your account: two-step verification is off.",
	mfa.EventRecoveryCodesNew: "New recovery codes were made for your account; the old ones no longer work.",
	mfa.EventRecoveryCodeUsed: "One of your recovery codes was used to sign in to your account.",
	mfa.EventFactorsReset:     "Two-step verification was turned off for your account and its recovery codes were removed.",
	passkey.EventAdded:        "A passkey was added to your account: it signs you in without your password.",
	passkey.EventRemoved:      "A passkey was removed from your account: it no longer signs you in.",
}

// NotifyFactor e-mails the owner of userID about a change of its second
// factors (mfa.Config.Notify).
func (s *Service) NotifyFactor(ctx context.Context, userID, event string) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil || u.Email == "" {
		if err != nil {
			s.log.WarnContext(ctx, "accounts: factor notice: load user", "user", userID, "err", err)
		}
		return
	}
	notice, ok := factorNotices[event]
	if !ok {
		notice = "The second factors of your account changed (" + event + ")."
	}
	s.send(ctx, "factor_changed", u.Email, mailData{Name: u.Name, Email: u.Email, Change: notice,
		ResetLink: s.absURL("/reset", back{})})
}
