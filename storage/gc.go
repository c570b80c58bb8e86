package storage

import (
	"context"
	"fmt"
	"time"
)

// RevokeSubjectTokens deactivates every authorization code, access token
// and refresh token held by a user (password reset, disabling, deletion).
func (s *Store) RevokeSubjectTokens(ctx context.Context, subject string) error {
	if subject == "" {
		return fmt.Errorf("storage: revoke tokens: empty subject")
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		for _, table := range []string{tableCodes, tableRefresh, tableAccess} {
			db, err := s.writer(ctx)
			if err != nil {
				return err
			}
			_, err = db.NewUpdate().TableExpr(table).
				Set("active = ?", false).
				Where("subject = ?", subject).
				Where("active = ?", true).
				Exec(ctx)
			if err != nil {
				return s.wrap("revoke tokens of a user: "+table, err)
			}
		}
		return nil
	})
}

// SubjectGrant is a grant of a subject that still holds an active code,
// access token or refresh token: its request id (which names the grant
// across rotations) and its session as stored (the caller's JSON).
type SubjectGrant struct {
	RequestID   string `bun:"request_id"`
	SessionData string `bun:"session_data"`
}

// SubjectGrants lists the grants of subject that still hold an active
// code, access token or refresh token (one entry per grant and session).
// It is for the rare revocation of an upstream identity, not a hot path.
func (s *Store) SubjectGrants(ctx context.Context, subject string) ([]SubjectGrant, error) {
	if subject == "" {
		return nil, fmt.Errorf("storage: grants of a subject: empty subject")
	}
	var out []SubjectGrant
	seen := map[SubjectGrant]bool{}
	for _, table := range []string{tableCodes, tableRefresh, tableAccess} {
		var rows []SubjectGrant
		err := s.reader(ctx).NewSelect().TableExpr(table).ColumnExpr("DISTINCT request_id, session_data").
			Where("subject = ?", subject).Where("active = ?", true).Scan(ctx, &rows)
		if err != nil {
			return nil, s.wrap("grants of a subject: "+table, err)
		}
		for _, g := range rows {
			if !seen[g] {
				seen[g] = true
				out = append(out, g)
			}
		}
	}
	return out, nil
}

// RevokeGrant deactivates every code, refresh token and access token of
// the grant requestID.
func (s *Store) RevokeGrant(ctx context.Context, requestID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		for _, table := range []string{tableCodes, tableRefresh, tableAccess} {
			if err := s.revokeFamily(ctx, table, requestID); err != nil {
				return err
			}
		}
		return nil
	})
}

// expiringTables maps each table DeleteExpired sweeps (every one has an
// indexed expires_at) to its key column.
var expiringTables = []struct{ table, key string }{
	{tableCodes, "signature"},
	{tableRefresh, "signature"},
	{tableAccess, "signature"},
	{tablePKCE, "signature"},
	{tableOIDC, "signature"},
	{"jwt_assertions", "jti"},
	{"dpop_proofs", "id"},
	{"browser_sessions", "id"},
	{"pending_logins", "id"},
	{"login_steps", "login_id"},
	{"webauthn_ceremonies", "id"},
	{"action_tokens", "id"},
	{"rate_counters", `"key"`},
}

// gcBatch is how many rows one DELETE of DeleteExpired removes at most, so
// that no single statement holds SQLite's write lock for long.
const gcBatch = 1000

// DeleteExpired removes every row that expired before now: codes, tokens,
// PKCE and OpenID Connect sessions, client assertion and DPoP proof jtis, browser
// sessions, pending logins, action tokens and rate counters. It deletes in
// small batches, each its own statement, so it never blocks other writers
// for long, and replicas may run it at the same time. Rows without an
// expiry (tokens of a lifespan of -1) are kept.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	now = now.UTC()
	db, err := s.writer(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range expiringTables {
		for {
			res, err := db.NewRaw(
				fmt.Sprintf("DELETE FROM %[1]s WHERE %[2]s IN (SELECT %[2]s FROM %[1]s WHERE expires_at < ? LIMIT %[3]d)", t.table, t.key, gcBatch),
				now).Exec(ctx)
			if err != nil {
				return total, s.wrap("delete expired rows from "+t.table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("storage: delete expired rows from %s: %w", t.table, err)
			}
			total += n
			if n < gcBatch {
				break
			}
		}
	}
	return total, nil
}
