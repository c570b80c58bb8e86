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
		for _, table := range []string{tableCodes, tableAccess, tableRefresh} {
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

// expiringTables are the tables DeleteExpired sweeps (every one has an
// indexed expires_at).
var expiringTables = []string{
	tableCodes, tableAccess, tableRefresh, tablePKCE, tableOIDC,
	"jwt_assertions", "browser_sessions", "pending_logins", "action_tokens", "rate_counters",
}

// DeleteExpired removes every row that expired before now: codes, tokens,
// PKCE and OpenID Connect sessions, client assertion jtis, browser
// sessions, pending logins, action tokens and rate counters. Each table is
// swept by its own statement, so replicas may run it at the same time.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	now = now.UTC()
	var total int64
	for _, table := range expiringTables {
		db, err := s.writer(ctx)
		if err != nil {
			return 0, err
		}
		res, err := db.NewDelete().TableExpr(table).Where("expires_at < ?", now).Exec(ctx)
		if err != nil {
			return total, s.wrap("delete expired rows from "+table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("storage: delete expired rows from %s: %w", table, err)
		}
		total += n
	}
	return total, nil
}
