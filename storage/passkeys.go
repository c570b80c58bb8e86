package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// WebAuthnCeremony is the server side of one WebAuthn ceremony (the
// registration of a passkey, or a sign-in with one) between its options
// and the browser's answer: the library's session data (the challenge)
// under the hash of a random handle the page holds, bound to the browser
// that began it. It is taken once (TakeWebAuthnCeremony) and expires
// within minutes.
type WebAuthnCeremony struct {
	bun.BaseModel `bun:"table:webauthn_ceremonies"`

	ID        string    `bun:"id,pk"`           // hash of the handle
	Binding   string    `bun:"binding,notnull"` // hash of the browser's cookie
	Purpose   string    `bun:"purpose,notnull"` // "register", "login", "reauth:<the change it confirms>"
	UserID    string    `bun:"user_id,notnull"` // the user who registers ("" for a sign-in)
	Data      []byte    `bun:"data,notnull"`    // the ceremony's session data (JSON)
	ExpiresAt time.Time `bun:"expires_at,notnull"`
}

// PutWebAuthnCeremony stores a new ceremony.
func (s *Store) PutWebAuthnCeremony(ctx context.Context, c *WebAuthnCeremony) error {
	if c.ID == "" || c.Binding == "" || c.Purpose == "" {
		return fmt.Errorf("storage: put webauthn ceremony: id, binding and purpose are required")
	}
	c.ExpiresAt = c.ExpiresAt.UTC()
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(c).Exec(ctx); err != nil {
		return s.wrap("put webauthn ceremony", err)
	}
	return nil
}

// TakeWebAuthnCeremony loads and deletes, in one transaction, the
// unexpired ceremony id of purpose begun by the browser binding: of two
// takes exactly one gets it. ErrNotFound when there is none (unknown,
// expired, taken already, another browser's or another purpose's; a
// ceremony asked for by another browser stays for its own).
func (s *Store) TakeWebAuthnCeremony(ctx context.Context, id, binding, purpose string) (*WebAuthnCeremony, error) {
	if unstorable(id, binding, purpose) {
		return nil, notFound("webauthn ceremony", "…")
	}
	c := new(WebAuthnCeremony)
	err := s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		err = db.NewSelect().Model(c).Where("id = ? AND binding = ? AND purpose = ?", id, binding, purpose).
			Where("expires_at > ?", now()).Scan(ctx)
		if err != nil {
			if classify(err) == ErrNotFound {
				return notFound("webauthn ceremony", "…")
			}
			return s.wrap("take webauthn ceremony", err)
		}
		res, err := db.NewDelete().Model((*WebAuthnCeremony)(nil)).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return s.wrap("take webauthn ceremony", err)
		}
		return expectRow(res, "webauthn ceremony", "…")
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// PasskeyByCredentialID returns the confirmed passkey whose credential id
// (base64url) is credID. ErrNotFound when there is none.
func (s *Store) PasskeyByCredentialID(ctx context.Context, credID string) (*SecondFactor, error) {
	if unstorable(credID) || credID == "" {
		return nil, notFound("passkey", "…")
	}
	f := new(SecondFactor)
	err := s.reader(ctx).NewSelect().Model(f).Where("credential_id = ? AND kind = ? AND confirmed", credID, FactorPasskey).Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("passkey", "…")
		}
		return nil, s.wrap("load passkey", err)
	}
	return f, nil
}

// UsePasskey records a sign-in with the passkey id: its new sign counter,
// its credential record (flags updated) and the time, in one statement,
// only when the counter moved forward (or stays 0 for an authenticator
// that keeps none): of two assertions with the same counter, or a cloned
// authenticator's lower one, none after the first succeeds. ErrNotFound
// otherwise (the passkey is gone, or the counter did not advance).
func (s *Store) UsePasskey(ctx context.Context, id string, counter int64, publicData []byte) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*SecondFactor)(nil)).
		Set("counter = ?", counter).Set("public_data = ?", publicData).Set("last_used_at = ?", now()).
		Where("id = ? AND kind = ? AND confirmed", id, FactorPasskey).
		Where("(counter < ? OR (counter = 0 AND ? = 0))", counter, counter).Exec(ctx)
	if err != nil {
		return s.wrap("use passkey", err)
	}
	return expectRow(res, "passkey", id)
}
