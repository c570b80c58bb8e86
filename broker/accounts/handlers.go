package accounts

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

const maxNameLength = 200

// ---- registration ----

func (s *Service) registrationClosed(w http.ResponseWriter, r *http.Request) {
	s.message(w, r, http.StatusNotFound, "Registration is closed", "", "New accounts cannot be created here.")
}

func (s *Service) registerForm(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AllowRegistration {
		s.registrationClosed(w, r)
		return
	}
	s.render(w, r, http.StatusOK, "register", s.newPage(w, r, "Create your account"))
}

func (s *Service) register(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	if !s.cfg.AllowRegistration {
		s.registrationClosed(w, r)
		return
	}
	p := s.newPage(w, r, "Create your account")
	name := strings.TrimSpace(r.PostFormValue("name"))
	pw := r.PostFormValue("password")
	p.Values["name"], p.Values["email"] = name, strings.TrimSpace(r.PostFormValue("email"))
	email, err := parseEmail(r.PostFormValue("email"))
	if err != nil {
		p.Error, p.ErrorField = userMessage(err), "email"
		s.render(w, r, http.StatusBadRequest, "register", p)
		return
	}
	if utf8.RuneCountInString(name) > maxNameLength {
		p.Error, p.ErrorField = "Use at most 200 characters for your name.", "name"
		s.render(w, r, http.StatusBadRequest, "register", p)
		return
	}
	ok, retry, err := s.limiter.Allow(ctx, ActionRegister, email, s.clientIP(r))
	if err != nil {
		s.serverError(w, r, "register", err)
		return
	}
	if !ok {
		s.tooMany(w, r, retry)
		return
	}
	if err := s.policy.Check(pw, email, name, s.cfg.Theme.ProductName); err != nil {
		p.Error, p.ErrorField = userMessage(err), "password"
		s.render(w, r, http.StatusBadRequest, "register", p)
		return
	}
	// From here on, the work and the answer are the same whether or not
	// the address has an account.
	hash, err := password.Hash(pw)
	if err != nil {
		s.serverError(w, r, "register: hash password", err)
		return
	}
	now := s.now()
	u := &storage.User{ID: NewUserID(), Email: email, Name: name, PasswordHash: hash,
		Active: !s.cfg.RequireActivation, CreatedAt: now, UpdatedAt: now}
	switch err := s.store.CreateUser(ctx, u); {
	case errors.Is(err, storage.ErrConflict):
		s.sendRegisterExists(ctx, email, p.back())
	case err != nil:
		s.serverError(w, r, "register: create user", err)
		return
	default:
		s.log.InfoContext(ctx, "accounts: user registered", "user", u.ID)
		if err := s.sendActivation(ctx, u, p.back()); err != nil {
			s.log.ErrorContext(ctx, "accounts: register: activation link", "user", u.ID, "err", err)
		}
	}
	s.waitFloor(ctx, start)
	s.checkInbox(w, r, p, email)
}

// checkInbox is the one answer to a registration, whatever happened.
func (s *Service) checkInbox(w http.ResponseWriter, r *http.Request, p *page, email string) {
	p.Title = "Check your inbox"
	p.Notice = "We've sent a message to " + email + ". Follow the link in it to confirm your address"
	if s.cfg.RequireActivation {
		p.Notice += " and activate your account"
	}
	p.Notice += ". The link is valid for " + humanDuration(s.cfg.ActivationTTL) + "."
	p.Links = []pageLink{{s.pageURL("/register/resend", p.back()), "Didn't get it? Send a new link"}}
	s.render(w, r, http.StatusOK, "message", p)
}

// emailRequest reads the e-mail address a resend or reset form posted,
// counts the attempt against the limits of action and loads the user who
// has that address (nil when nobody does: the caller answers the same
// either way). When ok is false the answer (form error, 429, 500) has been
// written.
func (s *Service) emailRequest(w http.ResponseWriter, r *http.Request, p *page, tmpl, action string) (email string, u *storage.User, ok bool) {
	ctx := r.Context()
	p.Values["email"] = strings.TrimSpace(r.PostFormValue("email"))
	email, err := parseEmail(r.PostFormValue("email"))
	if err != nil {
		p.Error, p.ErrorField = userMessage(err), "email"
		s.render(w, r, http.StatusBadRequest, tmpl, p)
		return "", nil, false
	}
	allowed, retry, err := s.limiter.Allow(ctx, action, email, s.clientIP(r))
	if err != nil {
		s.serverError(w, r, tmpl, err)
		return "", nil, false
	}
	if !allowed {
		s.tooMany(w, r, retry)
		return "", nil, false
	}
	u, err = s.store.GetUserByEmail(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.serverError(w, r, tmpl+": load user", err)
		return "", nil, false
	}
	if err != nil {
		u = nil
	}
	return email, u, true
}

func (s *Service) resendForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "resend", s.newPage(w, r, "Send a new activation link"))
}

func (s *Service) resend(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	p := s.newPage(w, r, "Send a new activation link")
	email, u, ok := s.emailRequest(w, r, p, "resend", ActionRegister)
	switch {
	case !ok:
		return
	case u != nil && !u.Disabled && (!u.Active || !u.EmailVerified):
		if err := s.sendActivation(ctx, u, p.back()); err != nil {
			s.log.ErrorContext(ctx, "accounts: resend: activation link", "user", u.ID, "err", err)
		}
	}
	s.waitFloor(ctx, start)
	p.Title = "Check your inbox"
	p.Notice = "If an account for " + email + " is waiting for activation, we've sent a new link to it. The link is valid for " +
		humanDuration(s.cfg.ActivationTTL) + "."
	s.render(w, r, http.StatusOK, "message", p)
}

func (s *Service) activateForm(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "Activate your account")
	p.Token = r.URL.Query().Get("token")
	if p.Token == "" {
		s.badLink(w, r, "/register/resend", "Send a new activation link")
		return
	}
	s.render(w, r, http.StatusOK, "activate", p)
}

func (s *Service) activate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, u, err := s.redeemToken(ctx, r.PostFormValue("token"), kindActivate, func(t *storage.ActionToken, u *storage.User) (bool, error) {
		if u.Email != t.Data || u.Disabled {
			return false, errBadLink // the address changed since, or an operator disabled the account
		}
		u.Active, u.EmailVerified = true, true
		return false, nil
	})
	if errors.Is(err, errBadLink) {
		s.badLink(w, r, "/register/resend", "Send a new activation link")
		return
	}
	if err != nil {
		s.serverError(w, r, "activate", err)
		return
	}
	s.log.InfoContext(ctx, "accounts: user activated", "user", u.ID)
	s.message(w, r, http.StatusOK, "Your account is active", "Your account is active and your address is confirmed. You can sign in now.", "")
}

// badLink answers a wrong, expired or used link, offering a new one.
func (s *Service) badLink(w http.ResponseWriter, r *http.Request, again, againText string) {
	s.message(w, r, http.StatusBadRequest, "This link can't be used", "",
		"This link is incomplete, has expired or has already been used.", pageLink{s.pageURL(again, s.backOf(r)), againText})
}

// ---- password reset ----

func (s *Service) resetForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "reset", s.newPage(w, r, "Reset your password"))
}

func (s *Service) reset(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	p := s.newPage(w, r, "Reset your password")
	email, u, ok := s.emailRequest(w, r, p, "reset", ActionReset)
	switch {
	case !ok:
		return
	case u != nil && !u.Disabled:
		if err := s.sendReset(ctx, u, p.back()); err != nil {
			s.log.ErrorContext(ctx, "accounts: reset link", "user", u.ID, "err", err)
		}
	}
	s.waitFloor(ctx, start)
	p.Title = "Check your inbox"
	p.Notice = "If an account exists for " + email + ", we've sent a link to reset its password. The link is valid for " +
		humanDuration(s.cfg.ResetTTL) + "."
	s.render(w, r, http.StatusOK, "message", p)
}

func (s *Service) resetConfirmForm(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "Choose a new password")
	p.Token = r.URL.Query().Get("token")
	if p.Token == "" {
		s.badLink(w, r, "/reset", "Ask for a new link")
		return
	}
	s.render(w, r, http.StatusOK, "reset_confirm", p)
}

func (s *Service) resetConfirm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := s.newPage(w, r, "Choose a new password")
	p.Token = r.PostFormValue("token")
	pw := r.PostFormValue("password")
	// Check the password before using up the link, so that a refused
	// password leaves the link working.
	if err := s.policy.Check(pw, s.cfg.Theme.ProductName); err != nil {
		p.Error, p.ErrorField = userMessage(err), "password"
		s.render(w, r, http.StatusBadRequest, "reset_confirm", p)
		return
	}
	if _, err := s.peekToken(ctx, p.Token, kindReset); errors.Is(err, errBadLink) {
		s.badLink(w, r, "/reset", "Ask for a new link")
		return
	} else if err != nil {
		s.serverError(w, r, "reset", err)
		return
	}
	// Hash only for a good link: a flood of made-up tokens costs no argon2id.
	hash, err := password.Hash(pw)
	if err != nil {
		s.serverError(w, r, "reset: hash password", err)
		return
	}
	// The new password ends every other link of the user (reset,
	// activation, e-mail change) in the same transaction.
	_, u, err := s.redeemToken(ctx, p.Token, kindReset, func(t *storage.ActionToken, u *storage.User) (bool, error) {
		if u.Email != t.Data || u.Disabled {
			return false, errBadLink
		}
		// Following the link proves the address: a reset also activates.
		u.PasswordHash, u.Active, u.EmailVerified = hash, true, true
		return true, nil
	})
	if errors.Is(err, errBadLink) {
		s.badLink(w, r, "/reset", "Ask for a new link")
		return
	}
	if err != nil {
		s.serverError(w, r, "reset", err)
		return
	}
	if err := s.revokeEverything(ctx, u.ID); err != nil {
		s.serverError(w, r, "reset", err)
		return
	}
	if s.cfg.Factors != nil && s.cfg.MFAResetByEmail {
		// The operator lets the mailbox stand in for a lost authenticator
		// (accounts.mfa_reset_by_email); the owner is told by e-mail.
		if _, err := s.cfg.Factors.Reset(ctx, u.ID); err != nil {
			s.serverError(w, r, "reset: second factors", err)
			return
		}
	}
	// The address that completed the reset is the owner's: it signs in
	// undelayed.
	if err := s.limiter.Succeeded(ctx, ActionLogin, u.Email, s.clientIP(r)); err != nil {
		s.log.WarnContext(ctx, "accounts: reset: clear login limit", "user", u.ID, "err", err)
	}
	s.log.InfoContext(ctx, "accounts: password reset", "user", u.ID)
	s.message(w, r, http.StatusOK, "Your password has been changed",
		"Your password has been changed and you have been signed out everywhere; links in e-mails sent before no longer work. Sign in with your new password. "+
			s.revocationDelay(), "")
}

// ---- account page ----

// currentUser is the signed-in user, or nil.
func (s *Service) currentUser(r *http.Request) (*storage.User, error) {
	if s.cfg.CurrentUser == nil {
		return nil, nil
	}
	u, err := s.cfg.CurrentUser(r)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// signedInUser returns the user, or answers the request itself and returns nil.
func (s *Service) signedInUser(w http.ResponseWriter, r *http.Request) *storage.User {
	u, err := s.currentUser(r)
	if err != nil {
		s.serverError(w, r, "account: current user", err)
		return nil
	}
	if u == nil || u.Disabled {
		if s.cfg.SignInURL == nil {
			s.message(w, r, http.StatusUnauthorized, "Sign in to manage your account", "",
				"You are not signed in. Sign in to the application first, then open this page again.")
			return nil
		}
		s.message(w, r, http.StatusUnauthorized, "Sign in to manage your account", "",
			"You are not signed in. Sign in, and you'll come back to this page.",
			pageLink{s.cfg.SignInURL(s.pageURL("/account", s.backOf(r))), "Sign in"})
		return nil
	}
	return u
}

func (s *Service) account(w http.ResponseWriter, r *http.Request) {
	u := s.signedInUser(w, r)
	if u == nil {
		return
	}
	p, ok := s.accountPage(w, r, u)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "account", p)
}

// revocationDelay says how long a signed-out application may still reach
// an API, and why: access tokens are verified offline, so one stays valid
// until it expires.
func (s *Service) revocationDelay() string {
	return "Applications that are open now may still reach their APIs for up to " + humanDuration(s.cfg.AccessTokenLifetime) +
		": an API checks an access token on its own, without asking us, so a token already issued works until it expires."
}

// reauthenticate checks u's current password, posted in field of the form
// of template tmpl (counted as a login attempt). It answers the request
// itself, with the form and an error, when it returns false.
func (s *Service) reauthenticate(w http.ResponseWriter, r *http.Request, p *page, u *storage.User, field, tmpl string) bool {
	return s.checkPassword(w, r, p, u, field, tmpl, true)
}

// checkPassword is reauthenticate; clear says whether a correct password
// clears the login limits (not when a second factor is checked next).
func (s *Service) checkPassword(w http.ResponseWriter, r *http.Request, p *page, u *storage.User, field, tmpl string, clear bool) bool {
	if !s.allowAttempt(w, r, u) {
		return false
	}
	if u.PasswordHash == "" {
		p.Error, p.ErrorField = "Your account has no password yet. Use \"Forgot password\" to set one.", field
		s.render(w, r, http.StatusBadRequest, tmpl, p)
		return false
	}
	good, err := password.Verify(u.PasswordHash, r.PostFormValue(field))
	if err != nil && !errors.Is(err, password.ErrTooLong) {
		s.serverError(w, r, "account: verify password", err)
		return false
	}
	if !good {
		p.Error, p.ErrorField = "Your current password is not correct.", field
		s.render(w, r, http.StatusBadRequest, tmpl, p)
		return false
	}
	if clear {
		s.attemptSucceeded(r.Context(), u, r)
	}
	return true
}

func (s *Service) changePassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, p := s.accountForm(w, r)
	if p == nil || !s.reauthenticate(w, r, p, u, "current_password", "account") {
		return
	}
	pw := r.PostFormValue("new_password")
	if err := s.policy.Check(pw, u.Email, u.Name, s.cfg.Theme.ProductName); err != nil {
		p.Error, p.ErrorField = userMessage(err), "new_password"
		s.render(w, r, http.StatusBadRequest, "account", p)
		return
	}
	hash, err := password.Hash(pw)
	if err != nil {
		s.serverError(w, r, "account: hash password", err)
		return
	}
	// The new password ends every outstanding link of the user in the
	// same transaction.
	if _, err := s.store.ChangeUserSecurity(ctx, u.ID, func(u *storage.User) error {
		u.PasswordHash, u.UpdatedAt = hash, s.now()
		return nil
	}); err != nil {
		s.serverError(w, r, "account: update user", err)
		return
	}
	if err := s.revokeEverything(ctx, u.ID); err != nil {
		s.serverError(w, r, "account: change password", err)
		return
	}
	s.log.InfoContext(ctx, "accounts: password changed", "user", u.ID)
	s.message(w, r, http.StatusOK, "Your password has been changed",
		"Your password has been changed and you have been signed out everywhere; links in e-mails sent before no longer work. Sign in again with your new password. "+
			s.revocationDelay(), "")
}

func (s *Service) changeEmail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, p := s.accountForm(w, r)
	if p == nil {
		return
	}
	p.Values["new_email"] = strings.TrimSpace(r.PostFormValue("new_email"))
	newEmail, err := parseEmail(r.PostFormValue("new_email"))
	if err != nil {
		p.Error, p.ErrorField = userMessage(err), "new_email"
		s.render(w, r, http.StatusBadRequest, "account", p)
		return
	}
	if newEmail == u.Email {
		p.Error, p.ErrorField = "That is already your address.", "new_email"
		s.render(w, r, http.StatusBadRequest, "account", p)
		return
	}
	if !s.reauthenticate(w, r, p, u, "email_password", "account") {
		return
	}
	// An address that belongs to another account gets no mail, and the
	// answer does not say so.
	switch _, err := s.store.GetUserByEmail(ctx, newEmail); {
	case errors.Is(err, storage.ErrNotFound):
		if err := s.sendEmailChange(ctx, u, newEmail, p.back()); err != nil {
			s.serverError(w, r, "account: change e-mail", err)
			return
		}
	case err != nil:
		s.serverError(w, r, "account: change e-mail", err)
		return
	}
	p.Values["new_email"] = ""
	p.Notice = "We've sent a link to " + newEmail + ". Your address changes when you follow it (within " +
		humanDuration(s.cfg.EmailChangeTTL) + ")."
	s.render(w, r, http.StatusOK, "account", p)
}

// emailConfirmForm shows the button that confirms a new address. The link
// alone is not enough: in a browser that is not signed in to the account,
// the page asks for the account's password as well (see emailConfirm).
func (s *Service) emailConfirmForm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := s.newPage(w, r, "Confirm your new address")
	p.Token = r.URL.Query().Get("token")
	t, err := s.peekToken(ctx, p.Token, kindEmailChange)
	if errors.Is(err, errBadLink) {
		s.badLink(w, r, "/account", "Go to your account")
		return
	}
	if err != nil {
		s.serverError(w, r, "confirm e-mail", err)
		return
	}
	cu, err := s.currentUser(r)
	if err != nil {
		s.serverError(w, r, "confirm e-mail: current user", err)
		return
	}
	if cu != nil && cu.ID == t.UserID {
		p.User = cu // signed in to the account: no password asked
	} else {
		p.Title = "Sign in to confirm your new address"
	}
	s.render(w, r, http.StatusOK, "email_confirm", p)
}

// emailConfirm changes the address to the one the link was sent to. It
// takes the account's browser session or its current password (counted
// as a login attempt): whoever holds the link but not the account — say
// someone who knew an old password and asked for the change before the
// owner reset it — changes nothing.
func (s *Service) emailConfirm(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	raw := r.PostFormValue("token")
	t, err := s.peekToken(ctx, raw, kindEmailChange)
	var u *storage.User
	if err == nil {
		u, err = s.store.GetUser(ctx, t.UserID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
			err = errBadLink
		}
	}
	if errors.Is(err, errBadLink) {
		s.badLink(w, r, "/account", "Go to your account")
		return
	}
	if err != nil {
		s.serverError(w, r, "confirm e-mail", err)
		return
	}
	cu, err := s.currentUser(r)
	if err != nil {
		s.serverError(w, r, "confirm e-mail: current user", err)
		return
	}
	if cu == nil || cu.ID != u.ID {
		p := s.newPage(w, r, "Sign in to confirm your new address")
		p.Token = raw
		if !s.reauthenticate(w, r, p, u, "password", "email_confirm") {
			return
		}
	}
	// The new address ends every other outstanding link of the user, in
	// the same transaction; a password reset or change that came first
	// has ended this one.
	old := u.Email
	_, u, err = s.redeemToken(ctx, raw, kindEmailChange, func(t *storage.ActionToken, u *storage.User) (bool, error) {
		if u.Disabled {
			return false, errBadLink
		}
		u.Email, u.EmailVerified = t.Data, true
		return true, nil
	})
	switch {
	case errors.Is(err, errBadLink):
		s.badLink(w, r, "/account", "Go to your account")
		return
	case errors.Is(err, storage.ErrConflict):
		s.message(w, r, http.StatusConflict, "This address is taken", "",
			"Another account uses "+t.Data+" now, so your address was not changed.")
		return
	case err != nil:
		s.serverError(w, r, "confirm e-mail: update user", err)
		return
	}
	// The login limit follows the address.
	if err := s.limiter.Succeeded(ctx, ActionLogin, old, ""); err != nil {
		s.log.WarnContext(ctx, "accounts: clear login limit", "user", u.ID, "err", err)
	}
	s.log.InfoContext(ctx, "accounts: e-mail changed", "user", u.ID)
	s.message(w, r, http.StatusOK, "Your address has changed", "Your e-mail address is now "+u.Email+". Use it to sign in.", "")
}
