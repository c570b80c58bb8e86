package federation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// storedClaims is the JSON kept in storage.Identity.Claims: the last
// profile the upstream sent.
type storedClaims struct {
	Name       string         `json:"name,omitempty"`
	GivenName  string         `json:"given_name,omitempty"`
	FamilyName string         `json:"family_name,omitempty"`
	Picture    string         `json:"picture,omitempty"`
	Groups     []string       `json:"groups,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
}

func claimsOf(ident connectors.Identity) ([]byte, error) {
	b, err := json.Marshal(storedClaims{
		Name: ident.Name, GivenName: ident.GivenName, FamilyName: ident.FamilyName,
		Picture: ident.Picture, Groups: ident.Groups, Extra: ident.Claims,
	})
	if err != nil {
		return nil, fmt.Errorf("encode upstream claims: %w", err)
	}
	return b, nil
}

// newUserID returns a random user id in the broker's format (the same as
// broker/accounts' NewUserID).
func newUserID() string { return "u_" + strings.ToLower(rand.Text()) }

// knownUser returns the user an upstream identity is linked to (nil when
// it is not linked, or its user is gone: userFor sorts that out) with one
// read, and record, which saves this login with the link (e-mail, claims,
// connector data, last login): the caller runs it in the login's
// transaction. The profile of a user without a local password follows the
// upstream's at once, as in userFor.
func (f *Federation) knownUser(ctx context.Context, connectorID string, ident connectors.Identity) (*storage.User, func(context.Context) error, error) {
	store := f.cfg.Store
	user, err := store.GetLinkedUser(ctx, connectorID, ident.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load linked user: %w", err)
	}
	link, err := f.linkOf(connectorID, ident)
	if err != nil {
		return nil, nil, err
	}
	link.UserID = user.ID // recorded only while the link names this user
	record := func(ctx context.Context) error {
		err := store.RecordIdentityLogin(ctx, link)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // unlinked or relinked meanwhile: the login was the linked user's
		}
		if err != nil {
			return fmt.Errorf("record identity login: %w", err)
		}
		return nil
	}
	return f.syncProfile(ctx, user, ident), record, nil
}

// linkOf is the link of an upstream identity as this login found it, its
// connector data encrypted.
func (f *Federation) linkOf(connectorID string, ident connectors.Identity) (*storage.Identity, error) {
	claims, err := claimsOf(ident)
	if err != nil {
		return nil, err
	}
	data, err := f.sealData(connectorID, ident.Subject, ident.ConnectorData)
	if err != nil {
		return nil, err
	}
	return &storage.Identity{
		ConnectorID:   connectorID,
		Subject:       ident.Subject,
		Email:         strings.ToLower(strings.TrimSpace(ident.Email)),
		EmailVerified: ident.EmailVerified,
		Claims:        claims,
		ConnectorData: data,
		LastLoginAt:   now(),
	}, nil
}

// userFor returns the broker user of an upstream identity: the user linked
// to (connector, subject); else, with LinkByEmail, a connector trusted for
// e-mail (trust_email) and an address the upstream says is verified, the
// user with that verified address, if joining it needs no more proof;
// else a new user. The identity's link is saved (or updated) with its
// connector data.
//
// An untrusted connector's addresses join no one (and are not shown to
// tell whether an account has them). Joining a user with no password needs
// no more proof: its only ways in are upstream identities that vouched
// for the same address. A user with a password may have been registered by
// someone else with the address of the person now signing in (a
// pre-hijacked account): then confirm is that user, nothing is linked, and
// the caller asks the person to prove control of the account (its
// password) or to go on with a new user.
func (f *Federation) userFor(ctx context.Context, c *connector, ident connectors.Identity) (user, confirm *storage.User, err error) {
	store := f.cfg.Store
	link, err := f.linkOf(c.id, ident)
	if err != nil {
		return nil, nil, err
	}

	// A known identity (the usual case): one statement records this login
	// and names the user.
	err = store.RecordIdentityLogin(ctx, link)
	switch {
	case err == nil:
		user, err := store.GetUser(ctx, link.UserID)
		if err == nil {
			return f.syncProfile(ctx, user, ident), nil, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, nil, fmt.Errorf("load linked user: %w", err)
		}
		// The user was deleted but the link survived: start afresh.
		f.log.WarnContext(ctx, "identity linked to a missing user; linking it anew", "connector", c.id, "user", link.UserID)
		if err := f.cfg.Store.DeleteIdentity(ctx, c.id, ident.Subject); err != nil {
			return nil, nil, err
		}
		link.UserID, link.CreatedAt = "", time.Time{}
	case !errors.Is(err, storage.ErrNotFound):
		return nil, nil, fmt.Errorf("record identity login: %w", err)
	}

	if f.cfg.LinkByEmail && c.trustEmail && link.Email != "" && ident.EmailVerified {
		user, err := store.GetUserByEmail(ctx, link.Email)
		switch {
		case err == nil && user.EmailVerified && user.PasswordHash != "":
			return nil, user, nil // its owner proves control first
		case err == nil && user.EmailVerified:
			link.UserID = user.ID
			won, err := f.createIdentity(ctx, link)
			if err != nil {
				return nil, nil, err
			}
			if won {
				f.log.InfoContext(ctx, "upstream identity linked to an existing user by verified e-mail", "connector", c.id, "user", user.ID)
				return user, nil, nil
			}
			return f.userFor(ctx, c, ident) // a concurrent login linked it first
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return nil, nil, fmt.Errorf("look up user by e-mail: %w", err)
		}
	}
	user, err = f.newUser(ctx, c, link, ident)
	return user, nil, err
}

// newUser creates a user for an upstream identity seen for the first time.
// The e-mail address goes with it only when the connector is trusted for
// e-mail, the upstream says the address is verified and no other user has
// it: an address on a broker account that its owner did not prove would
// let whoever typed it upstream squat it (and be joined by the owner's
// later login, or be handed the account by a password reset). The
// identity keeps the address either way.
func (f *Federation) newUser(ctx context.Context, c *connector, link *storage.Identity, ident connectors.Identity) (*storage.User, error) {
	store := f.cfg.Store
	user := &storage.User{
		ID:         newUserID(),
		Name:       ident.Name,
		GivenName:  ident.GivenName,
		FamilyName: ident.FamilyName,
		Picture:    ident.Picture,
		Active:     true,
	}
	if ident.EmailVerified && c.trustEmail {
		user.Email, user.EmailVerified = link.Email, link.Email != ""
	}
	err := store.CreateUser(ctx, user)
	if errors.Is(err, storage.ErrConflict) && user.Email != "" {
		// Another user has this address: never take it over.
		user.Email, user.EmailVerified = "", false
		err = store.CreateUser(ctx, user)
	}
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	link.UserID = user.ID
	won, err := f.createIdentity(ctx, link)
	if err != nil {
		return nil, errors.Join(err, f.dropUser(ctx, user.ID))
	}
	if !won {
		// A concurrent first login of the same identity made its user
		// first: use that one.
		if err := f.dropUser(ctx, user.ID); err != nil {
			return nil, err
		}
		user, confirm, err := f.userFor(ctx, c, ident)
		if err == nil && confirm != nil {
			err = errors.New("identity linked and unlinked concurrently")
		}
		return user, err
	}
	f.log.InfoContext(ctx, "user created for an upstream identity", "connector", link.ConnectorID, "user", user.ID)
	return user, nil
}

// createIdentity inserts a new link (storage sets its times); false when
// the identity is already linked (a concurrent login won).
func (f *Federation) createIdentity(ctx context.Context, link *storage.Identity) (bool, error) {
	won, err := f.cfg.Store.LinkIdentity(ctx, link)
	if err != nil {
		return false, fmt.Errorf("create identity: %w", err)
	}
	return won, nil
}

func (f *Federation) dropUser(ctx context.Context, id string) error {
	if err := f.cfg.Store.DeleteUser(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete unused user: %w", err)
	}
	return nil
}

// syncProfile copies the upstream's profile (name, picture) to a user that
// has no local password, so it follows the upstream. Users with a local
// password keep their own profile. A failure is logged: the login goes on.
func (f *Federation) syncProfile(ctx context.Context, user *storage.User, ident connectors.Identity) *storage.User {
	if user.PasswordHash != "" {
		return user
	}
	next := *user
	changed := false
	set := func(dst *string, v string) {
		if v != "" && v != *dst {
			*dst, changed = v, true
		}
	}
	set(&next.Name, ident.Name)
	set(&next.GivenName, ident.GivenName)
	set(&next.FamilyName, ident.FamilyName)
	set(&next.Picture, ident.Picture)
	if !changed {
		return user
	}
	// Only the profile: a disable or password change that committed since
	// the user was read stays.
	profile := storage.UserProfile{Name: next.Name, GivenName: next.GivenName, FamilyName: next.FamilyName, Picture: next.Picture}
	if err := f.cfg.Store.SetUserProfile(ctx, user.ID, profile); err != nil {
		f.log.WarnContext(ctx, "update user profile from upstream", "user", user.ID, "err", err)
		return user
	}
	return &next
}
