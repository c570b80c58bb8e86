package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Hand-written statements of a login (see sessions.go).
const (
	userColumns = "id, email, email_verified, password_hash, name, given_name, family_name, picture, " +
		"active, disabled, created_at, updated_at"

	sqlGetUser = "SELECT " + userColumns + " FROM users WHERE id = ?"
	// SQLite: the times as text, parsed once by User.scanRow (see
	// tokenQueries.selectBySignatureSQLite).
	sqlGetUserSQLite = "SELECT id, email, email_verified, password_hash, name, given_name, family_name, picture, " +
		"active, disabled, +created_at AS created_at, +updated_at AS updated_at FROM users WHERE id = ?"
	sqlGetLinkedUser = "SELECT u.id, u.email, u.email_verified, u.password_hash, u.name, u.given_name, u.family_name, " +
		"u.picture, u.active, u.disabled, u.created_at, u.updated_at " +
		"FROM identities i JOIN users u ON u.id = i.user_id WHERE i.connector_id = ? AND i.subject = ?"
	sqlRecordIdentityLogin = "UPDATE identities SET email = ?, email_verified = ?, claims = ?, connector_data = ?, " +
		"last_login_at = ? WHERE connector_id = ? AND subject = ? RETURNING user_id, created_at"
	// SQLite reads the link first (see readThenWrite); these two columns
	// never change.
	sqlGetIdentityLink     = "SELECT user_id, created_at FROM identities WHERE connector_id = ? AND subject = ?"
	sqlUpdateIdentityLogin = "UPDATE identities SET email = ?, email_verified = ?, claims = ?, connector_data = ?, " +
		"last_login_at = ? WHERE connector_id = ? AND subject = ?"
	sqlUpdateIdentityLoginOf = sqlUpdateIdentityLogin + " AND user_id = ?"
)

// expectRow turns "no row was affected" into ErrNotFound.
func expectRow(res sql.Result, kind, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storage: %s %q: rows affected: %w", kind, id, err)
	}
	if n == 0 {
		return notFound(kind, id)
	}
	return nil
}

// CreateUser stores a new user, lower-casing its e-mail address and
// setting CreatedAt and UpdatedAt. It fails with ErrConflict when the id
// or the (non-empty) e-mail address is taken.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.ID == "" {
		return fmt.Errorf("storage: create user: empty id")
	}
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	u.CreatedAt = now()
	u.UpdatedAt = u.CreatedAt
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(u).Exec(ctx); err != nil {
		return s.wrap(fmt.Sprintf("create user %q", u.ID), err)
	}
	return nil
}

// GetUser loads a user by id.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	if unstorable(id) {
		return nil, notFound("user", id)
	}
	query := sqlGetUser
	if s.dialect == DialectSQLite {
		query = sqlGetUserSQLite
	}
	u := new(User)
	if err := s.queryOne(ctx, s.reader(ctx), u, query, id); err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("user", id)
		}
		return nil, s.wrap(fmt.Sprintf("load user %q", id), err)
	}
	return u, nil
}

// GetUserByEmail loads a user by e-mail address, ignoring case.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || unstorable(email) {
		return nil, notFound("user with e-mail", email)
	}
	u := new(User)
	if err := s.reader(ctx).NewSelect().Model(u).Where("lower(email) = ?", email).Where("email <> ''").Scan(ctx); err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("user with e-mail", email)
		}
		return nil, s.wrap("load user by e-mail", err)
	}
	return u, nil
}

// ListUsers returns every user ordered by e-mail address.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var users []User
	if err := s.reader(ctx).NewSelect().Model(&users).Order("email", "id").Scan(ctx); err != nil {
		return nil, s.wrap("list users", err)
	}
	return users, nil
}

// UserProfile is what a user's profile holds: the name and picture that
// an upstream may keep up to date.
type UserProfile struct {
	Name, GivenName, FamilyName, Picture string
}

// SetUserProfile writes a user's profile and UpdatedAt, and nothing else:
// a concurrent disable, password or e-mail change is never undone by it.
// ErrNotFound when there is no such user.
func (s *Store) SetUserProfile(ctx context.Context, id string, p UserProfile) error {
	return s.updateUserColumns(ctx, id, "set profile of", now(), func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("name = ?", p.Name).Set("given_name = ?", p.GivenName).
			Set("family_name = ?", p.FamilyName).Set("picture = ?", p.Picture)
	})
}

// SetUserDisabled disables or enables a user, writing only that flag and
// UpdatedAt: one statement, so no write of another column that read the
// user before it can bring the old flag back, and it undoes no other
// change. ErrNotFound when there is no such user.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.updateUserColumns(ctx, id, "set disabled of", now(), func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("disabled = ?", disabled)
	})
}

// writeUserSecurity writes what a security change (ChangeUserSecurity,
// RedeemActionToken) may change — e-mail address (lower-cased), whether
// it is verified, password hash, activation — and UpdatedAt; never the
// disabled flag or the profile, which others change without the user's
// lock. ErrConflict when the e-mail address belongs to another user.
func (s *Store) writeUserSecurity(ctx context.Context, u *User) error {
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	u.UpdatedAt = now()
	return s.updateUserColumns(ctx, u.ID, "update", u.UpdatedAt, func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("email = ?", u.Email).Set("email_verified = ?", u.EmailVerified).
			Set("password_hash = ?", u.PasswordHash).Set("active = ?", u.Active)
	})
}

// updateUserColumns updates the columns set sets, and updated_at (to at),
// of one user; verb names the write in errors.
func (s *Store) updateUserColumns(ctx context.Context, id, verb string, at time.Time, set func(*bun.UpdateQuery) *bun.UpdateQuery) error {
	if unstorable(id) {
		return notFound("user", id)
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	q := db.NewUpdate().Model((*User)(nil)).Set("updated_at = ?", at).Where("id = ?", id)
	res, err := set(q).Exec(ctx)
	if err != nil {
		return s.wrap(fmt.Sprintf("%s user %q", verb, id), err)
	}
	return expectRow(res, "user", id)
}

// DeleteUser removes a user with its identities, browser sessions, action
// tokens, second factors, recovery codes, codes and tokens.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		res, err := db.NewDelete().Model((*User)(nil)).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return s.wrap(fmt.Sprintf("delete user %q", id), err)
		}
		if err := expectRow(res, "user", id); err != nil {
			return err
		}
		for _, model := range []any{(*Identity)(nil), (*BrowserSession)(nil), (*ActionToken)(nil), (*SecondFactor)(nil), (*RecoveryCode)(nil), (*LoginStep)(nil)} {
			if _, err := db.NewDelete().Model(model).Where("user_id = ?", id).Exec(ctx); err != nil {
				return s.wrap(fmt.Sprintf("delete user %q", id), err)
			}
		}
		for _, table := range requestTables {
			if _, err := db.NewDelete().TableExpr(table).Where("subject = ?", id).Exec(ctx); err != nil {
				return s.wrap(fmt.Sprintf("delete user %q: %s", id, table), err)
			}
		}
		return nil
	})
}

// GetIdentity loads the link of an upstream identity.
func (s *Store) GetIdentity(ctx context.Context, connectorID, subject string) (*Identity, error) {
	if unstorable(connectorID, subject) {
		return nil, notFound("identity", connectorID+"/"+subject)
	}
	id := new(Identity)
	err := s.reader(ctx).NewSelect().Model(id).
		Where("connector_id = ?", connectorID).Where("subject = ?", subject).Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("identity", connectorID+"/"+subject)
		}
		return nil, s.wrap("load identity", err)
	}
	return id, nil
}

// prepareIdentity checks what every new link of an upstream identity
// needs (connector id, subject, user id) and sets CreatedAt and
// LastLoginAt to now where they are zero; verb names the caller.
func prepareIdentity(verb string, id *Identity) error {
	if id.ConnectorID == "" || id.Subject == "" || id.UserID == "" {
		return fmt.Errorf("storage: %s identity: connector id, subject and user id are required", verb)
	}
	t := now()
	if id.CreatedAt.IsZero() {
		id.CreatedAt = t
	}
	if id.LastLoginAt.IsZero() {
		id.LastLoginAt = t
	}
	return nil
}

// UpsertIdentity creates or replaces the link of an upstream identity
// (CreatedAt is kept when the link exists).
func (s *Store) UpsertIdentity(ctx context.Context, id *Identity) error {
	if err := prepareIdentity("upsert", id); err != nil {
		return err
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	_, err = db.NewInsert().Model(id).
		On("CONFLICT (connector_id, subject) DO UPDATE").
		Set("user_id = EXCLUDED.user_id").
		Set("email = EXCLUDED.email").
		Set("email_verified = EXCLUDED.email_verified").
		Set("claims = EXCLUDED.claims").
		Set("connector_data = EXCLUDED.connector_data").
		Set("last_login_at = EXCLUDED.last_login_at").
		Exec(ctx)
	if err != nil {
		return s.wrap("upsert identity", err)
	}
	return nil
}

// GetLinkedUser loads the user an upstream identity is linked to, in one
// read. ErrNotFound when the identity is not linked, or linked to a user
// that no longer exists.
func (s *Store) GetLinkedUser(ctx context.Context, connectorID, subject string) (*User, error) {
	if unstorable(connectorID, subject) {
		return nil, notFound("identity", connectorID+"/"+subject)
	}
	u := new(User)
	if err := s.queryOne(ctx, s.reader(ctx), u, sqlGetLinkedUser, connectorID, subject); err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("user of identity", connectorID+"/"+subject)
		}
		return nil, s.wrap("load linked user", err)
	}
	return u, nil
}

// RecordIdentityLogin updates the link of an upstream identity that is
// linked already with what the upstream said at this login: e-mail
// address, claims, connector data and LastLoginAt (now when zero). It fills
// in id.UserID and id.CreatedAt from the link, and fails with ErrNotFound
// when the identity is not linked. One statement: the login of a known
// identity needs no read of the link before it.
//
// A caller that has found the link's user already sets id.UserID: the
// login is then recorded only while the identity is still linked to that
// user (ErrNotFound otherwise), and nothing is read back.
func (s *Store) RecordIdentityLogin(ctx context.Context, id *Identity) error {
	if id.ConnectorID == "" || id.Subject == "" {
		return fmt.Errorf("storage: record identity login: connector id and subject are required")
	}
	if unstorable(id.ConnectorID, id.Subject) {
		return notFound("identity", id.ConnectorID+"/"+id.Subject)
	}
	if id.LastLoginAt.IsZero() {
		id.LastLoginAt = now()
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	var linked struct {
		UserID    string    `bun:"user_id"`
		CreatedAt time.Time `bun:"created_at"`
	}
	switch {
	case id.UserID != "":
		err = s.execOne(ctx, db, sqlUpdateIdentityLoginOf, id.Email, id.EmailVerified, id.Claims,
			id.ConnectorData, sqlTime(id.LastLoginAt), id.ConnectorID, id.Subject, id.UserID)
		if err == nil {
			return nil
		}
	case s.dialect == DialectSQLite:
		err = s.queryOne(ctx, db, &linked, sqlGetIdentityLink, id.ConnectorID, id.Subject)
		if err == nil {
			err = s.execOne(ctx, db, sqlUpdateIdentityLogin, id.Email, id.EmailVerified, id.Claims,
				id.ConnectorData, sqlTime(id.LastLoginAt), id.ConnectorID, id.Subject)
		}
	default:
		err = s.queryOne(ctx, db, &linked, sqlRecordIdentityLogin, id.Email, id.EmailVerified, id.Claims, id.ConnectorData,
			sqlTime(id.LastLoginAt), id.ConnectorID, id.Subject)
	}
	if err != nil {
		if classify(err) == ErrNotFound {
			return notFound("identity", id.ConnectorID+"/"+id.Subject)
		}
		return s.wrap("record identity login", err)
	}
	id.UserID, id.CreatedAt = linked.UserID, linked.CreatedAt
	return nil
}

// CreateIdentity links an upstream identity to a user. It fails with
// ErrConflict when the identity is linked already (a concurrent login won).
func (s *Store) CreateIdentity(ctx context.Context, id *Identity) error {
	if err := prepareIdentity("create", id); err != nil {
		return err
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(id).Exec(ctx); err != nil {
		return s.wrap("create identity", err)
	}
	return nil
}

// LinkIdentity links an upstream identity to a user unless the identity is
// linked already (a concurrent login won): created says which. Unlike
// CreateIdentity, a lost race is no error, and inside a transaction it
// does not abort it (the insert does nothing on conflict).
func (s *Store) LinkIdentity(ctx context.Context, id *Identity) (created bool, err error) {
	if err := prepareIdentity("link", id); err != nil {
		return false, err
	}
	db, err := s.writer(ctx)
	if err != nil {
		return false, err
	}
	res, err := db.NewInsert().Model(id).On("CONFLICT (connector_id, subject) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, s.wrap("link identity", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("link identity", err)
	}
	return n == 1, nil
}

// IdentitiesWithConnectorDataNotPrefixed returns the connector id, subject
// and connector data of every identity whose connector data is set and
// does not start with prefix (what an earlier version wrote before the
// broker sealed connector data).
func (s *Store) IdentitiesWithConnectorDataNotPrefixed(ctx context.Context, prefix []byte) ([]Identity, error) {
	var rows []Identity
	err := s.reader(ctx).NewSelect().Model(&rows).Column("connector_id", "subject", "connector_data").
		Where("connector_data IS NOT NULL").
		Where("substr(connector_data, 1, ?) <> ?", len(prefix), prefix).
		Order("connector_id", "subject").
		Scan(ctx)
	if err != nil {
		return nil, s.wrap("list identities by connector data", err)
	}
	return rows, nil
}

// ReplaceConnectorData sets an identity's connector data to data if it
// still holds old; false when it changed meanwhile or the identity is gone.
func (s *Store) ReplaceConnectorData(ctx context.Context, connectorID, subject string, old, data []byte) (bool, error) {
	db, err := s.writer(ctx)
	if err != nil {
		return false, err
	}
	res, err := db.NewUpdate().Model((*Identity)(nil)).
		Set("connector_data = ?", data).
		Where("connector_id = ?", connectorID).Where("subject = ?", subject).
		Where("connector_data = ?", old).Exec(ctx)
	if err != nil {
		return false, s.wrap("replace connector data", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap("replace connector data", err)
	}
	return n == 1, nil
}

// DeleteIdentity removes the link of an upstream identity; an absent one is
// not an error.
func (s *Store) DeleteIdentity(ctx context.Context, connectorID, subject string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	_, err = db.NewDelete().Model((*Identity)(nil)).
		Where("connector_id = ?", connectorID).Where("subject = ?", subject).Exec(ctx)
	if err != nil {
		return s.wrap("delete identity", err)
	}
	return nil
}

// ListIdentities returns the upstream identities linked to a user, ordered
// by connector and subject.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]Identity, error) {
	var ids []Identity
	err := s.reader(ctx).NewSelect().Model(&ids).Where("user_id = ?", userID).
		Order("connector_id", "subject").Scan(ctx)
	if err != nil {
		return nil, s.wrap("list identities", err)
	}
	return ids, nil
}

// ChangeUserSecurity changes a user's password or e-mail address: change
// sees the user's current row (locked) and modifies it, and the user is
// written back together with the end of every outstanding action token of
// the user (activation, reset and e-mail-change links), in one
// transaction. Only what a security change may change is written back
// (writeUserSecurity): a concurrent disable or profile update stays. A link used concurrently either is used before the change
// or fails after it. When change fails nothing is written and its error is
// returned as is.
func (s *Store) ChangeUserSecurity(ctx context.Context, userID string, change func(u *User) error) (*User, error) {
	var u *User
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.lockUser(ctx, userID); err != nil {
			return err
		}
		var err error
		if u, err = s.GetUser(ctx, userID); err != nil {
			return err
		}
		if err := change(u); err != nil {
			return err
		}
		if err := s.writeUserSecurity(ctx, u); err != nil {
			return err
		}
		return s.endActionTokens(ctx, userID)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// lockUser begins the transaction in ctx with a write to the user's row,
// so that changes to one user (and to its action tokens) run one after
// the other: Postgres holds the row lock, SQLite the only writer, until
// the transaction ends. ErrNotFound when there is no such user.
func (s *Store) lockUser(ctx context.Context, id string) error {
	if unstorable(id) {
		return notFound("user", id)
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*User)(nil)).Set("updated_at = updated_at").Where("id = ?", id).Exec(ctx)
	if err != nil {
		return s.wrap(fmt.Sprintf("lock user %q", id), err)
	}
	return expectRow(res, "user", id)
}
