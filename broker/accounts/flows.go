package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// errBadLink is what a wrong, expired or used link gets.
var errBadLink = errors.New("invalid, expired or used link")

// hashToken is the stored id of an e-mailed token.
func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// issueToken stores a new single-use token and returns its raw value.
func (s *Service) issueToken(ctx context.Context, kind, userID, data string, ttl time.Duration) (string, error) {
	raw := rand.Text()
	now := s.now()
	t := &storage.ActionToken{ID: hashToken(raw), Kind: kind, UserID: userID, Data: data, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.store.CreateActionToken(ctx, t); err != nil {
		return "", fmt.Errorf("store %s token: %w", kind, err)
	}
	return raw, nil
}

// peekToken loads an unused, unexpired token of kind without using it.
// Every failure that the link's holder caused is errBadLink.
func (s *Service) peekToken(ctx context.Context, raw, kind string) (*storage.ActionToken, error) {
	if !validTokenFormat(raw) {
		return nil, errBadLink
	}
	t, err := s.store.GetActionToken(ctx, hashToken(raw), kind, s.now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errBadLink
	}
	if err != nil {
		return nil, fmt.Errorf("load %s token: %w", kind, err)
	}
	return t, nil
}

// redeemToken uses a token of kind and applies it to its user in one
// transaction (storage.RedeemActionToken): apply changes the user, and
// reports whether that is a security change, which ends the user's other
// outstanding links. Every failure that the link's holder caused is
// errBadLink; apply's own errors come back as they are.
func (s *Service) redeemToken(ctx context.Context, raw, kind string,
	apply func(t *storage.ActionToken, u *storage.User) (bool, error)) (*storage.ActionToken, *storage.User, error) {
	if !validTokenFormat(raw) {
		return nil, nil, errBadLink
	}
	t, u, err := s.store.RedeemActionToken(ctx, hashToken(raw), kind, s.now(), func(t *storage.ActionToken, u *storage.User) (bool, error) {
		security, err := apply(t, u)
		u.UpdatedAt = s.now()
		return security, err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, errBadLink
	}
	if err != nil {
		return nil, nil, fmt.Errorf("use %s token: %w", kind, err)
	}
	return t, u, nil
}

// link is the absolute URL of path with a token and a return link.
func (s *Service) link(path, raw string, b back) string {
	q := b.values()
	q.Set("token", raw)
	return s.issuer + path + "?" + q.Encode()
}

// absURL is the absolute URL of a page, for e-mails.
func (s *Service) absURL(path string, b back) string {
	return s.issuer + strings.TrimPrefix(s.pageURL(path, b), s.base)
}

// mailData is what every e-mail template sees.
type mailData struct {
	Theme    Theme
	Name     string
	Email    string
	NewEmail string
	Link     string // the action link
	Expires  string // how long Link is valid, e.g. "48 hours"
	// For register_exists: where to sign in or reset instead.
	ResetLink  string
	ResendLink string
	ReturnTo   string // the application, when the visitor came from one
	Change     string // for factor_changed: what changed
}

// send renders an e-mail now and delivers it in the background, so that
// the answer does not wait for (or reveal anything through) the mail server.
func (s *Service) send(ctx context.Context, name, to string, d mailData) {
	d.Theme = s.cfg.Theme
	msg, err := s.tmpl.mail(name, to, d)
	if err != nil {
		s.log.ErrorContext(ctx, "accounts: mail", "mail", name, "err", err)
		return
	}
	s.mailWG.Add(1)
	go func() {
		defer s.mailWG.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := s.mailer.Send(ctx, msg); err != nil {
			s.log.ErrorContext(ctx, "accounts: send mail", "mail", name, "to", to, "err", err)
		}
	}()
}

// sendActivation issues an activation link for u and mails it.
func (s *Service) sendActivation(ctx context.Context, u *storage.User, b back) error {
	raw, err := s.issueToken(ctx, kindActivate, u.ID, u.Email, s.cfg.ActivationTTL)
	if err != nil {
		return err
	}
	// No name: the address is not verified yet, so the mail may reach a
	// stranger, and the name is whatever the registrant typed.
	s.send(ctx, "activate", u.Email, mailData{Email: u.Email, Link: s.link("/activate", raw, b),
		Expires: humanDuration(s.cfg.ActivationTTL), ReturnTo: b.ReturnTo})
	return nil
}

// sendReset issues a password-reset link for u and mails it.
func (s *Service) sendReset(ctx context.Context, u *storage.User, b back) error {
	raw, err := s.issueToken(ctx, kindReset, u.ID, u.Email, s.cfg.ResetTTL)
	if err != nil {
		return err
	}
	s.send(ctx, "reset", u.Email, mailData{Name: u.Name, Email: u.Email, Link: s.link("/reset/confirm", raw, b),
		Expires: humanDuration(s.cfg.ResetTTL), ReturnTo: b.ReturnTo})
	return nil
}

// sendRegisterExists tells the owner of an address that someone tried to
// register it again, with the ways back into the existing account.
func (s *Service) sendRegisterExists(ctx context.Context, email string, b back) {
	s.send(ctx, "register_exists", email, mailData{Email: email,
		ResetLink:  s.absURL("/reset", b),
		ResendLink: s.absURL("/register/resend", b),
		ReturnTo:   b.ReturnTo})
}

// sendEmailChange mails a confirmation link to the new address and a
// notice to the old one.
func (s *Service) sendEmailChange(ctx context.Context, u *storage.User, newEmail string, b back) error {
	raw, err := s.issueToken(ctx, kindEmailChange, u.ID, newEmail, s.cfg.EmailChangeTTL)
	if err != nil {
		return err
	}
	d := mailData{Name: u.Name, Email: u.Email, NewEmail: newEmail, Link: s.link("/account/email/confirm", raw, b),
		Expires: humanDuration(s.cfg.EmailChangeTTL), ReturnTo: b.ReturnTo}
	notice := d
	d.Name = "" // the new address is not verified: no text chosen by the account holder
	s.send(ctx, "email_change", newEmail, d)
	notice.Link = ""
	s.send(ctx, "email_changed", u.Email, notice)
	return nil
}

// revokeEverything signs the user out everywhere: browser sessions and
// every access and refresh token.
func (s *Service) revokeEverything(ctx context.Context, userID string) error {
	if err := s.store.DeleteUserBrowserSessions(ctx, userID); err != nil {
		return fmt.Errorf("delete browser sessions: %w", err)
	}
	if err := s.store.RevokeSubjectTokens(ctx, userID); err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}
