package accounts

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// passkeyView is the passkeys part of the account pages.
type passkeyView struct {
	Keys     []passkeyItem
	Ceremony *passkeyCeremony // a registration under way (account_passkey)
}

type passkeyItem struct {
	ID, Name, Created, LastUsed string
	Synced                      bool
}

// passkeyCeremony is what the page that creates a passkey needs.
type passkeyCeremony struct {
	Name, Handle, Options, Script string
	// Reauth: a re-authentication (beginPasskeyReauth), not a
	// registration; its answer goes to Action, and Then says what
	// happens next.
	Reauth       bool
	Action, Then string
}

const dateLayout = "2 Jan 2006 15:04 MST"

// passkeyRoutes are the passkey forms of the account page, mounted when
// Config.Passkeys is set.
func (s *Service) passkeyRoutes(post func(path string, h http.HandlerFunc, f form)) {
	if s.cfg.Passkeys == nil {
		return
	}
	f := form{"account", "Your account"}
	post("/account/passkeys/new", s.newPasskey, f)
	post("/account/passkeys/finish", s.finishPasskey, f)
	post("/account/passkeys/remove", s.removePasskey, f)
}

// passkeyView lists u's passkeys for the account page.
func (s *Service) passkeyView(ctx context.Context, u *storage.User) (*passkeyView, error) {
	if s.cfg.Passkeys == nil {
		return nil, nil
	}
	keys, err := s.cfg.Passkeys.List(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	v := &passkeyView{}
	for _, f := range keys {
		it := passkeyItem{ID: f.ID, Name: f.Name, Created: f.CreatedAt.UTC().Format(dateLayout), Synced: passkey.Synced(f)}
		if f.LastUsedAt != nil {
			it.LastUsed = f.LastUsedAt.UTC().Format(dateLayout)
		}
		v.Keys = append(v.Keys, it)
	}
	return v, nil
}

// newPasskey begins registering a passkey after the current password:
// the page that runs navigator.credentials.create.
func (s *Service) newPasskey(w http.ResponseWriter, r *http.Request) {
	u, p := s.accountForm(w, r)
	if p == nil {
		return
	}
	name := passkey.CleanName(r.PostFormValue("passkey_name"))
	p.Values["passkey_name"] = strings.TrimSpace(r.PostFormValue("passkey_name"))
	if !s.reauthenticate(w, r, p, u, "passkey_password", "account") {
		return
	}
	c, err := s.cfg.Passkeys.BeginRegistration(r.Context(), w, r, u)
	if err != nil {
		s.serverError(w, r, "account: begin passkey", err)
		return
	}
	s.showCeremony(w, r, p, "Add a passkey", c, passkeyCeremony{Name: name})
}

// showCeremony renders the page that runs the passkey ceremony c (what
// else it needs in pc), allowed to run the passkey script.
func (s *Service) showCeremony(w http.ResponseWriter, r *http.Request, p *page, title string, c *passkey.Ceremony, pc passkeyCeremony) {
	pc.Handle, pc.Options, pc.Script = c.Handle, c.Options, s.cfg.Passkeys.ScriptURL()
	p.Title = title
	p.Passkeys = &passkeyView{Ceremony: &pc}
	s.render(s.cfg.Passkeys.AllowScript(w), r, http.StatusOK, "account_passkey", p)
}

// finishPasskey stores the passkey the browser created (the ceremony's
// answer), or says why not; nothing is stored for an answer that does not
// verify.
func (s *Service) finishPasskey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := s.signedInUser(w, r)
	if u == nil {
		return
	}
	f, err := s.cfg.Passkeys.FinishRegistration(ctx, r, u, r.PostFormValue("ceremony"), r.PostFormValue("passkey_name"), r.PostFormValue("response"))
	status, msg := http.StatusOK, ""
	switch {
	case errors.Is(err, passkey.ErrExpired):
		status, msg = http.StatusBadRequest, "The passkey request expired or was used already. Add the passkey again."
	case errors.Is(err, passkey.ErrDuplicate):
		status, msg = http.StatusConflict, "This passkey is registered already."
	case errors.Is(err, passkey.ErrInvalid):
		s.log.InfoContext(ctx, "accounts: passkey refused", "user", u.ID, "err", err)
		status, msg = http.StatusBadRequest, "The passkey could not be verified, so it was not added. Try again."
	case err != nil:
		s.serverError(w, r, "account: finish passkey", err)
		return
	}
	var codes []string
	if msg == "" && s.cfg.Factors != nil {
		// A first second factor: the recovery codes that stand in for it
		// (nil when the user has some, also when a concurrent enrolment
		// has just made them).
		if codes, err = s.cfg.Factors.FirstRecoveryCodes(ctx, u.ID); err != nil {
			s.serverError(w, r, "account: recovery codes", err)
			return
		}
	}
	p, ok := s.accountPage(w, r, u)
	if !ok {
		return
	}
	if msg != "" {
		p.Error = msg
		s.render(w, r, status, "account", p)
		return
	}
	p.Notice = "Passkey \"" + f.Name + "\" added: it signs you in without your password."
	switch {
	case codes != nil:
		p.Title = "Passkey added: save your recovery codes"
		p.MFA = &mfaView{Codes: codes}
		s.render(w, r, http.StatusOK, "account_mfa", p)
		return
	case p.MFA != nil && p.MFA.Remaining > 0:
		p.Notice += " Your recovery codes still work."
	}
	s.render(w, r, http.StatusOK, "account", p)
}

// removePasskey removes one of the user's passkeys after the current
// password.
func (s *Service) removePasskey(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, p := s.accountForm(w, r)
	if p == nil || !s.reauthenticate(w, r, p, u, "passkey_remove_password", "account") {
		return
	}
	err := s.cfg.Passkeys.Remove(ctx, u.ID, r.PostFormValue("passkey"))
	if errors.Is(err, passkey.ErrUnknown) {
		p.Error = "You have no such passkey (it may have been removed already)."
		s.render(w, r, http.StatusNotFound, "account", p)
		return
	}
	if err != nil {
		s.serverError(w, r, "account: remove passkey", err)
		return
	}
	p, ok := s.accountPage(w, r, u)
	if !ok {
		return
	}
	p.Notice = "Passkey removed: it no longer signs you in."
	s.render(w, r, http.StatusOK, "account", p)
}
