package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Kinds of second factor (SecondFactor.Kind).
const (
	// FactorTOTP is a time-based one-time password (RFC 6238). Secret is
	// the sealed shared secret, Counter the last time step used.
	FactorTOTP = "totp"
	// FactorPasskey is a WebAuthn credential (broker/passkey): PublicData
	// its credential record, Counter its sign counter, CredentialID its
	// id (base64url), unique among all users.
	FactorPasskey = "passkey"
)

// SecondFactor is one authentication factor of a user beyond the password:
// a TOTP authenticator (and, later, a passkey). Storage never sees a
// secret in the clear: Secret is sealed by the caller (internal/secret).
type SecondFactor struct {
	bun.BaseModel `bun:"table:second_factors"`

	ID     string `bun:"id,pk"`
	UserID string `bun:"user_id,notnull"`
	Kind   string `bun:"kind,notnull"` // FactorTOTP, …
	Name   string `bun:"name,notnull"` // the user's name for it
	// Secret is the sealed secret of the factor (TOTP: the shared key).
	Secret []byte `bun:"secret"`
	// PublicData is what the factor keeps in the clear (a passkey's
	// credential id and public key).
	PublicData []byte `bun:"public_data"`
	// CredentialID is a passkey's credential id, base64url (NULL for
	// other kinds).
	CredentialID string `bun:"credential_id,nullzero"`
	// Counter only grows: TOTP's last time step used (each code once), a
	// passkey's sign counter.
	Counter int64 `bun:"counter,notnull"`
	// Confirmed: the user proved the factor works (a first code); an
	// unconfirmed factor never signs anyone in.
	Confirmed  bool       `bun:"confirmed,notnull"`
	CreatedAt  time.Time  `bun:"created_at,notnull"`
	LastUsedAt *time.Time `bun:"last_used_at"`
}

// RecoveryCode is one single-use recovery code of a user, stored as a
// keyed hash.
type RecoveryCode struct {
	bun.BaseModel `bun:"table:recovery_codes"`

	UserID    string     `bun:"user_id,pk"`
	CodeHash  string     `bun:"code_hash,pk"`
	CreatedAt time.Time  `bun:"created_at,notnull"`
	UsedAt    *time.Time `bun:"used_at"`
}

// LoginStep is the state of a login between its factors: the pending
// login LoginID (its stored id, a hash) passed the first factor(s) AMR
// for UserID, and waits for the second (or, Enrol, for the user to enrol
// one).
type LoginStep struct {
	bun.BaseModel `bun:"table:login_steps"`

	LoginID   string    `bun:"login_id,pk"`
	UserID    string    `bun:"user_id,notnull"`
	AMR       string    `bun:"amr,notnull"` // space-separated RFC 8176 values
	Enrol     bool      `bun:"enrol,notnull"`
	ExpiresAt time.Time `bun:"expires_at,notnull"`
}

// AddSecondFactor stores a new (usually unconfirmed) factor.
func (s *Store) AddSecondFactor(ctx context.Context, f *SecondFactor) error {
	if f.ID == "" || f.UserID == "" || f.Kind == "" {
		return fmt.Errorf("storage: add second factor: id, user and kind are required")
	}
	if f.CreatedAt.IsZero() {
		f.CreatedAt = now()
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(f).Exec(ctx); err != nil {
		return s.wrap("add second factor", err)
	}
	return nil
}

// ListSecondFactors returns the user's factors, confirmed or not, oldest first.
func (s *Store) ListSecondFactors(ctx context.Context, userID string) ([]SecondFactor, error) {
	if unstorable(userID) {
		return nil, nil
	}
	var fs []SecondFactor
	if err := s.reader(ctx).NewSelect().Model(&fs).Where("user_id = ?", userID).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, s.wrap("list second factors", err)
	}
	return fs, nil
}

// DeleteUnconfirmedFactors removes the user's unconfirmed factors of kind
// (enrolments never finished).
func (s *Store) DeleteUnconfirmedFactors(ctx context.Context, userID, kind string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*SecondFactor)(nil)).Where("user_id = ? AND kind = ? AND NOT confirmed", userID, kind).Exec(ctx); err != nil {
		return s.wrap("delete unconfirmed factors", err)
	}
	return nil
}

// ConfirmSecondFactor marks the user's factor id confirmed with its first
// counter (TOTP: the step of the code that confirmed it, which cannot be
// used again) and deletes the user's other unconfirmed factors of its
// kind. ErrNotFound when the user has no such unconfirmed factor.
func (s *Store) ConfirmSecondFactor(ctx context.Context, userID, id string, counter int64) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		f := new(SecondFactor)
		if err := db.NewSelect().Model(f).Where("id = ? AND user_id = ? AND NOT confirmed", id, userID).Scan(ctx); err != nil {
			if classify(err) == ErrNotFound {
				return notFound("second factor", id)
			}
			return s.wrap("confirm second factor", err)
		}
		t := now()
		res, err := db.NewUpdate().Model((*SecondFactor)(nil)).Set("confirmed = TRUE").Set("counter = ?", counter).
			Set("last_used_at = ?", t).Where("id = ? AND user_id = ? AND NOT confirmed", id, userID).Exec(ctx)
		if err != nil {
			return s.wrap("confirm second factor", err)
		}
		if err := expectRow(res, "second factor", id); err != nil {
			return err
		}
		if _, err := db.NewDelete().Model((*SecondFactor)(nil)).Where("user_id = ? AND kind = ? AND NOT confirmed", userID, f.Kind).Exec(ctx); err != nil {
			return s.wrap("confirm second factor: drop unconfirmed", err)
		}
		return nil
	})
}

// AdvanceFactorCounter raises the counter of the confirmed factor id to
// counter and records its use, in one statement, when counter is greater
// than the stored one: of two uses of the same TOTP code (or of a cloned
// passkey's replayed counter) exactly one succeeds. ErrNotFound otherwise.
func (s *Store) AdvanceFactorCounter(ctx context.Context, id string, counter int64) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*SecondFactor)(nil)).Set("counter = ?", counter).Set("last_used_at = ?", now()).
		Where("id = ? AND confirmed AND counter < ?", id, counter).Exec(ctx)
	if err != nil {
		return s.wrap("advance factor counter", err)
	}
	return expectRow(res, "second factor", id)
}

// DeleteSecondFactor removes the user's factor id; when it was the user's
// last confirmed factor, the recovery codes go with it. ErrNotFound when
// the user has no such factor.
func (s *Store) DeleteSecondFactor(ctx context.Context, userID, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		res, err := db.NewDelete().Model((*SecondFactor)(nil)).Where("id = ? AND user_id = ?", id, userID).Exec(ctx)
		if err != nil {
			return s.wrap("delete second factor", err)
		}
		if err := expectRow(res, "second factor", id); err != nil {
			return err
		}
		n, err := db.NewSelect().Model((*SecondFactor)(nil)).Where("user_id = ? AND confirmed", userID).Count(ctx)
		if err != nil {
			return s.wrap("delete second factor: count", err)
		}
		if n == 0 {
			if _, err := db.NewDelete().Model((*RecoveryCode)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
				return s.wrap("delete second factor: recovery codes", err)
			}
		}
		return nil
	})
}

// DeleteSecondFactors removes every factor and recovery code of the user
// and says how many factors there were.
func (s *Store) DeleteSecondFactors(ctx context.Context, userID string) (int, error) {
	var n int64
	err := s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		res, err := db.NewDelete().Model((*SecondFactor)(nil)).Where("user_id = ?", userID).Exec(ctx)
		if err != nil {
			return s.wrap("delete second factors", err)
		}
		n, _ = res.RowsAffected()
		if _, err := db.NewDelete().Model((*RecoveryCode)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
			return s.wrap("delete recovery codes", err)
		}
		return nil
	})
	return int(n), err
}

// ReplaceRecoveryCodes replaces the user's recovery codes with the given
// hashes, in one transaction.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		if _, err := db.NewDelete().Model((*RecoveryCode)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
			return s.wrap("replace recovery codes", err)
		}
		t := now()
		rows := make([]RecoveryCode, len(hashes))
		for i, h := range hashes {
			rows[i] = RecoveryCode{UserID: userID, CodeHash: h, CreatedAt: t}
		}
		if len(rows) == 0 {
			return nil
		}
		if _, err := db.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return s.wrap("replace recovery codes", err)
		}
		return nil
	})
}

// FirstRecoveryCodes stores the hashes as the user's recovery codes when
// the user has no unused one, and reports whether it did. The check and
// the insert run under the user's lock (lockUser), so of concurrent first
// enrolments (two tabs confirming an app and adding a passkey) exactly one
// set is stored: a second set never silently replaces the one a page has
// just shown. ErrNotFound when there is no such user.
func (s *Store) FirstRecoveryCodes(ctx context.Context, userID string, hashes []string) (bool, error) {
	stored := false
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.lockUser(ctx, userID); err != nil {
			return err
		}
		n, err := s.UnusedRecoveryCodes(ctx, userID)
		if err != nil || n > 0 {
			return err
		}
		if err := s.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
			return err
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return stored, nil
}

// UseRecoveryCode marks the user's unused recovery code whose hash is
// given as used, in one statement: of concurrent uses exactly one
// succeeds. ErrNotFound for an unknown or used code.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*RecoveryCode)(nil)).Set("used_at = ?", now()).
		Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID, hash).Exec(ctx)
	if err != nil {
		return s.wrap("use recovery code", err)
	}
	return expectRow(res, "recovery code", "…")
}

// UnusedRecoveryCodes counts the user's unused recovery codes.
func (s *Store) UnusedRecoveryCodes(ctx context.Context, userID string) (int, error) {
	n, err := s.reader(ctx).NewSelect().Model((*RecoveryCode)(nil)).Where("user_id = ? AND used_at IS NULL", userID).Count(ctx)
	if err != nil {
		return 0, s.wrap("count recovery codes", err)
	}
	return int(n), nil
}

// PutLoginStep records (or replaces) the second step of a pending login.
func (s *Store) PutLoginStep(ctx context.Context, st *LoginStep) error {
	if st.LoginID == "" || st.UserID == "" {
		return fmt.Errorf("storage: put login step: login and user are required")
	}
	st.ExpiresAt = st.ExpiresAt.UTC()
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		if _, err := db.NewDelete().Model((*LoginStep)(nil)).Where("login_id = ?", st.LoginID).Exec(ctx); err != nil {
			return s.wrap("put login step", err)
		}
		if _, err := db.NewInsert().Model(st).Exec(ctx); err != nil {
			return s.wrap("put login step", err)
		}
		return nil
	})
}

// GetLoginStep loads the unexpired second step of the pending login whose
// stored id is loginID.
func (s *Store) GetLoginStep(ctx context.Context, loginID string) (*LoginStep, error) {
	if unstorable(loginID) {
		return nil, notFound("login step", "…")
	}
	st := new(LoginStep)
	err := s.reader(ctx).NewSelect().Model(st).Where("login_id = ?", loginID).Where("expires_at > ?", now()).Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("login step", "…")
		}
		return nil, s.wrap("load login step", err)
	}
	return st, nil
}

// DeleteLoginStep removes the second step of a pending login (none is no error).
func (s *Store) DeleteLoginStep(ctx context.Context, loginID string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*LoginStep)(nil)).Where("login_id = ?", loginID).Exec(ctx); err != nil {
		return s.wrap("delete login step", err)
	}
	return nil
}
