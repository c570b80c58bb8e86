package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// The statements of a login, written by hand so that SQLite parses each
// once per connection (see hotSQL), not on every call as bun's.
const (
	pendingLoginColumns = "id, browser_binding, client_id, form, requested_at, expires_at, " +
		"connector_id, upstream_state_hash, connector_state"

	sqlInsertPendingLogin = "INSERT INTO pending_logins (" + pendingLoginColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
	sqlGetPendingLogin    = "SELECT " + pendingLoginColumns + " FROM pending_logins WHERE id = ? AND expires_at > ?"
	// RETURNING gives the row as deleted or updated (on Postgres; SQLite
	// reads it first, see readThenWrite).
	sqlTakePendingLogin      = "DELETE FROM pending_logins WHERE id = ? RETURNING " + pendingLoginColumns
	sqlTakeBoundPendingLogin = "DELETE FROM pending_logins WHERE id = ? AND browser_binding = ? RETURNING " + pendingLoginColumns
	sqlGetAnyPendingLogin    = "SELECT " + pendingLoginColumns + " FROM pending_logins WHERE id = ?"
	sqlGetBoundPendingLogin  = "SELECT " + pendingLoginColumns + " FROM pending_logins WHERE id = ? AND browser_binding = ?"
	sqlDeletePendingLogin    = "DELETE FROM pending_logins WHERE id = ?"
	sqlDeleteBoundPending    = "DELETE FROM pending_logins WHERE id = ? AND browser_binding = ?"
	sqlUsePendingLogin       = "DELETE FROM pending_logins WHERE id = ? AND browser_binding = ? AND expires_at > ?"
	sqlRecordUpstreamState   = "UPDATE pending_logins SET connector_id = ?, upstream_state_hash = ?, connector_state = ? " +
		"WHERE id = ? AND browser_binding = ? AND expires_at > ?"
	sqlClaimUpstreamState = "UPDATE pending_logins SET upstream_state_hash = '' " +
		"WHERE id = ? AND browser_binding = ? AND connector_id = ? AND upstream_state_hash = ? AND expires_at > ? " +
		"RETURNING " + pendingLoginColumns
	upstreamStateWhere    = "WHERE id = ? AND browser_binding = ? AND connector_id = ? AND upstream_state_hash = ? AND expires_at > ?"
	sqlGetUpstreamState   = "SELECT " + pendingLoginColumns + " FROM pending_logins " + upstreamStateWhere
	sqlClearUpstreamState = "UPDATE pending_logins SET upstream_state_hash = '' " + upstreamStateWhere
	browserSessionColumns = "id, user_id, auth_time, idp, amr, created_at, expires_at, idp_subject, auth_time_unknown, checked_at"
	sqlGetBrowserSession  = "SELECT " + browserSessionColumns + " FROM browser_sessions " +
		"WHERE id = ? AND expires_at > ?"
	sqlInsertBrowserSession = "INSERT INTO browser_sessions (" + browserSessionColumns + ") " +
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

// readThenWrite stands in on SQLite for an UPDATE or DELETE … RETURNING
// of at most one row, which SQLite answers through a temporary table (its
// pages allocated and freed on every call: dear on the hot path). It reads
// the row with query, then runs write, whose WHERE clause and arguments must
// be query's: when the row changed in between (another connection took it),
// write finds nothing and the row counts as not found (sql.ErrNoRows).
func (s *Store) readThenWrite(ctx context.Context, db bun.IDB, dest any, query, write string, args ...any) error {
	if err := s.queryOne(ctx, db, dest, query, args...); err != nil {
		return err
	}
	return s.execOne(ctx, db, write, args...)
}

// execOne runs a hand-written write that must change a row; when it
// changes none, it fails with sql.ErrNoRows.
func (s *Store) execOne(ctx context.Context, db bun.IDB, query string, args ...any) error {
	res, err := s.runner(db).exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

// queryOne runs a hand-written statement that answers at most one row and
// scans it into dest (a model); no row is sql.ErrNoRows.
func (s *Store) queryOne(ctx context.Context, db bun.IDB, dest any, query string, args ...any) error {
	rows, err := s.runner(db).query(ctx, query, args...)
	if err != nil {
		return err
	}
	return s.scanOne(ctx, rows, dest)
}

// CreateBrowserSession stores a broker login session (CreatedAt defaults to
// now).
func (s *Store) CreateBrowserSession(ctx context.Context, bs *BrowserSession) error {
	if bs.ID == "" || bs.UserID == "" {
		return fmt.Errorf("storage: create browser session: id and user id are required")
	}
	if bs.AMR == nil {
		bs.AMR = []string{}
	}
	if bs.CreatedAt.IsZero() {
		bs.CreatedAt = now()
	}
	amr, err := sqlList(bs.AMR)
	if err != nil {
		return err
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	var checked any
	if bs.CheckedAt != nil {
		checked = sqlTime(*bs.CheckedAt)
	}
	_, err = s.runner(db).exec(ctx, sqlInsertBrowserSession,
		bs.ID, bs.UserID, sqlTime(bs.AuthTime), bs.IDP, amr, sqlTime(bs.CreatedAt), sqlTime(bs.ExpiresAt),
		bs.IDPSubject, bs.AuthTimeUnknown, checked)
	if err != nil {
		return s.wrap("create browser session", err)
	}
	return nil
}

// GetBrowserSession loads an unexpired browser session.
func (s *Store) GetBrowserSession(ctx context.Context, id string) (*BrowserSession, error) {
	bs := new(BrowserSession)
	err := s.queryOne(ctx, s.reader(ctx), bs, sqlGetBrowserSession, id, sqlTime(time.Now()))
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("browser session", "…")
		}
		return nil, s.wrap("load browser session", err)
	}
	return bs, nil
}

// DeleteBrowserSession removes a browser session; an absent one is not an
// error.
func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*BrowserSession)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return s.wrap("delete browser session", err)
	}
	return nil
}

// DeleteUserBrowserSessions removes every browser session of a user.
func (s *Store) DeleteUserBrowserSessions(ctx context.Context, userID string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*BrowserSession)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
		return s.wrap("delete browser sessions of a user", err)
	}
	return nil
}

// DeleteIdentityBrowserSessions removes every browser session of user
// userID that came from the upstream identity subject of connector idp. An
// empty subject matches every identity of that connector, and sessions
// recorded without their subject count as the identity's.
func (s *Store) DeleteIdentityBrowserSessions(ctx context.Context, userID, idp, subject string) error {
	if userID == "" || idp == "" {
		return fmt.Errorf("storage: delete identity browser sessions: user and idp are required")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	q := db.NewDelete().Model((*BrowserSession)(nil)).Where("user_id = ?", userID).Where("idp = ?", idp)
	if subject != "" {
		q = q.Where("idp_subject IN (?, '')", subject)
	}
	if _, err := q.Exec(ctx); err != nil {
		return s.wrap("delete browser sessions of an identity", err)
	}
	return nil
}

// MarkBrowserSessionChecked records that the upstream confirmed the
// identity of browser session id at checkedAt.
func (s *Store) MarkBrowserSessionChecked(ctx context.Context, id string, checkedAt time.Time) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*BrowserSession)(nil)).Set("checked_at = ?", checkedAt.UTC()).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return s.wrap("mark browser session checked", err)
	}
	return expectRow(res, "browser session", "…")
}

// CreatePendingLogin stores an authorization request waiting for a login.
func (s *Store) CreatePendingLogin(ctx context.Context, p *PendingLogin) error {
	if p.ID == "" {
		return fmt.Errorf("storage: create pending login: empty id")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	_, err = s.runner(db).exec(ctx, sqlInsertPendingLogin, p.ID, p.BrowserBinding, p.ClientID, p.Form,
		sqlTime(p.RequestedAt), sqlTime(p.ExpiresAt), p.ConnectorID, p.UpstreamStateHash, p.ConnectorState)
	if err != nil {
		return s.wrap("create pending login", err)
	}
	return nil
}

// GetPendingLogin loads an unexpired pending login.
func (s *Store) GetPendingLogin(ctx context.Context, id string) (*PendingLogin, error) {
	p := new(PendingLogin)
	err := s.queryOne(ctx, s.reader(ctx), p, sqlGetPendingLogin, id, sqlTime(time.Now()))
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("pending login", "…")
		}
		return nil, s.wrap("load pending login", err)
	}
	return p, nil
}

// UpdatePendingLogin replaces a pending login's stored fields.
func (s *Store) UpdatePendingLogin(ctx context.Context, p *PendingLogin) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model(p).WherePK().Exec(ctx)
	if err != nil {
		return s.wrap("update pending login", err)
	}
	return expectRow(res, "pending login", "…")
}

// TakePendingLogin loads and deletes a pending login in one statement: of
// concurrent callers exactly one gets it. An expired one is deleted too,
// and reported as ErrNotFound.
func (s *Store) TakePendingLogin(ctx context.Context, id string) (*PendingLogin, error) {
	return s.takePendingLogin(ctx, id, nil)
}

// TakeBoundPendingLogin is TakePendingLogin for the browser whose binding
// (BrowserBinding) is given: a pending login of another browser is left
// alone and reported as ErrNotFound, as is any pending login when binding
// is empty.
func (s *Store) TakeBoundPendingLogin(ctx context.Context, id, binding string) (*PendingLogin, error) {
	if binding == "" {
		return nil, notFound("pending login", "…")
	}
	return s.takePendingLogin(ctx, id, &binding)
}

// UsePendingLogin deletes the unexpired pending login id of the browser
// binding, for a caller that has read it already: one statement, and of
// concurrent callers exactly one succeeds. The others, another browser's
// binding, an empty binding and an expired or missing login get
// ErrNotFound.
func (s *Store) UsePendingLogin(ctx context.Context, id, binding string) error {
	if binding == "" {
		return notFound("pending login", "…")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if err := s.execOne(ctx, db, sqlUsePendingLogin, id, binding, sqlTime(time.Now())); err != nil {
		if classify(err) == ErrNotFound {
			return notFound("pending login", "…")
		}
		return s.wrap("use pending login", err)
	}
	return nil
}

func (s *Store) takePendingLogin(ctx context.Context, id string, binding *string) (*PendingLogin, error) {
	db, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	p := new(PendingLogin)
	switch {
	case binding == nil && s.dialect == DialectSQLite:
		err = s.readThenWrite(ctx, db, p, sqlGetAnyPendingLogin, sqlDeletePendingLogin, id)
	case binding == nil:
		err = s.queryOne(ctx, db, p, sqlTakePendingLogin, id)
	case s.dialect == DialectSQLite:
		err = s.readThenWrite(ctx, db, p, sqlGetBoundPendingLogin, sqlDeleteBoundPending, id, *binding)
	default:
		err = s.queryOne(ctx, db, p, sqlTakeBoundPendingLogin, id, *binding)
	}
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("pending login", "…")
		}
		return nil, s.wrap("take pending login", err)
	}
	if !p.ExpiresAt.After(time.Now()) {
		return nil, notFound("pending login", "…")
	}
	return p, nil
}

// RecordUpstreamState records, in one statement, that the pending login id
// of the browser binding went to connector connectorID with the state whose
// hash is stateHash, and the connector's own state. It fails with
// ErrNotFound when the pending login is not this browser's (or binding is
// empty), has expired or is gone.
func (s *Store) RecordUpstreamState(ctx context.Context, id, binding, connectorID, stateHash string, connectorState []byte) error {
	if binding == "" {
		return notFound("pending login", "…")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := s.runner(db).exec(ctx, sqlRecordUpstreamState,
		connectorID, stateHash, connectorState, id, binding, sqlTime(time.Now()))
	if err != nil {
		return s.wrap("record upstream state", err)
	}
	return expectRow(res, "pending login", "…")
}

// ClaimUpstreamState uses up the upstream state of a pending login in one
// statement and returns the pending login: it clears the state hash when
// the pending login id belongs to the browser binding, went to connector
// connectorID with the state whose hash is stateHash, and has not expired.
// Of concurrent callers with the same state exactly one gets it; the others,
// and every mismatch, get ErrNotFound (the caller tells them apart by
// reading the pending login). The connector state is returned, and kept
// until the pending login is taken: without the state it is of no use.
func (s *Store) ClaimUpstreamState(ctx context.Context, id, binding, connectorID, stateHash string) (*PendingLogin, error) {
	if binding == "" || connectorID == "" || stateHash == "" {
		return nil, notFound("pending login", "…")
	}
	p := new(PendingLogin)
	db, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	args := []any{id, binding, connectorID, stateHash, sqlTime(time.Now())}
	if s.dialect == DialectSQLite {
		err = s.readThenWrite(ctx, db, p, sqlGetUpstreamState, sqlClearUpstreamState, args...)
		p.UpstreamStateHash = ""
	} else {
		err = s.queryOne(ctx, db, p, sqlClaimUpstreamState, args...)
	}
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("pending login", "…")
		}
		return nil, s.wrap("claim upstream state", err)
	}
	return p, nil
}
