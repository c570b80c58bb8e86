package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// The helpers below read and fault a store's database the way no Store
// method does, for tests outside storage (at-rest checks, lifetimes as
// stored, injected failures), so that no package outside storage issues
// SQL.

// Dump returns every non-NULL value of every row of every table of the
// store, as bytes (numbers and times as fmt prints them), keyed by
// "table.column": what a reader of the database (a stolen backup) sees.
func Dump(t testing.TB, s *storage.Store) map[string][][]byte {
	t.Helper()
	ctx := context.Background()
	db := s.DB()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if s.Dialect() == storage.DialectPostgres {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	var tables []string
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	out := map[string][][]byte{}
	for _, table := range tables {
		func() {
			rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
			if err != nil {
				t.Fatalf("storagetest: dump %s: %v", table, err)
			}
			defer rows.Close()
			cols, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatalf("storagetest: dump %s: %v", table, err)
				}
				for i, v := range vals {
					var b []byte
					switch v := v.(type) {
					case nil:
						continue
					case []byte:
						b = bytes.Clone(v)
					case string:
						b = []byte(v)
					default:
						b = []byte(fmt.Sprint(v))
					}
					key := table + "." + cols[i]
					out[key] = append(out[key], b)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}()
	}
	return out
}

// Column returns the non-NULL values of one column of a table as the
// database holds them (Dump's, for one column).
func Column(t testing.TB, s *storage.Store, table, column string) [][]byte {
	t.Helper()
	rows, err := s.DB().QueryContext(context.Background(), "SELECT "+column+" FROM "+table+" WHERE "+column+" IS NOT NULL")
	if err != nil {
		t.Fatalf("storagetest: %s.%s: %v", table, column, err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatalf("storagetest: %s.%s: %v", table, column, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// CountRows is the number of rows of a table.
func CountRows(t testing.TB, s *storage.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM "+table).Scan(context.Background(), &n); err != nil {
		t.Fatalf("storagetest: count %s: %v", table, err)
	}
	return n
}

// AuthorizeCode is what a test checks of a stored authorization code.
type AuthorizeCode struct {
	RequestedAt, ExpiresAt time.Time
	// PKCE and OIDC: the row carries the code's PKCE and OpenID Connect
	// parts.
	PKCE, OIDC bool
}

// AuthorizeCodes returns the stored authorization codes, the newest
// (by requested_at) first.
func AuthorizeCodes(t testing.TB, s *storage.Store) []AuthorizeCode {
	t.Helper()
	rows, err := s.DB().QueryContext(context.Background(),
		"SELECT requested_at, expires_at, pkce_form IS NOT NULL, oidc_form IS NOT NULL FROM authorize_codes ORDER BY requested_at DESC, signature")
	if err != nil {
		t.Fatalf("storagetest: authorize codes: %v", err)
	}
	defer rows.Close()
	var out []AuthorizeCode
	for rows.Next() {
		var c AuthorizeCode
		if err := rows.Scan(&c.RequestedAt, &c.ExpiresAt, &c.PKCE, &c.OIDC); err != nil {
			t.Fatalf("storagetest: authorize codes: %v", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ActionTokens returns every stored action token (e-mailed links), used or not.
func ActionTokens(t testing.TB, s *storage.Store) []storage.ActionToken {
	t.Helper()
	var out []storage.ActionToken
	if err := s.DB().NewSelect().Model(&out).Scan(context.Background()); err != nil {
		t.Fatalf("storagetest: action tokens: %v", err)
	}
	return out
}

// BrowserSessions returns a user's browser sessions, expired or not.
func BrowserSessions(t testing.TB, s *storage.Store, userID string) []storage.BrowserSession {
	t.Helper()
	var out []storage.BrowserSession
	if err := s.DB().NewSelect().Model(&out).Where("user_id = ?", userID).Scan(context.Background()); err != nil {
		t.Fatalf("storagetest: browser sessions: %v", err)
	}
	return out
}

// SetAuthTime backdates (or moves) the auth_time of every browser session
// of a user, as if they had logged in at.
func SetAuthTime(t testing.TB, s *storage.Store, userID string, at time.Time) {
	t.Helper()
	if _, err := s.DB().NewUpdate().Model((*storage.BrowserSession)(nil)).Set("auth_time = ?", at).Where("user_id = ?", userID).Exec(context.Background()); err != nil {
		t.Fatalf("storagetest: set auth_time: %v", err)
	}
}

// FailWrites makes every statement of kind ("INSERT" or "UPDATE") on table
// fail, as a database going away at that moment would (a trigger: a real
// failing statement), until the returned function is called. One table
// at a time per store.
func FailWrites(t testing.TB, s *storage.Store, kind, table string) (restore func()) {
	t.Helper()
	if kind != "INSERT" && kind != "UPDATE" {
		t.Fatalf("storagetest: FailWrites of %q: INSERT or UPDATE", kind)
	}
	create := []string{
		`CREATE TRIGGER bk_fail_write BEFORE ` + kind + ` ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'simulated database failure'); END`,
	}
	drop := []string{`DROP TRIGGER bk_fail_write`}
	if s.Dialect() == storage.DialectPostgres {
		create = []string{
			`CREATE FUNCTION bk_fail_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated database failure'; END $$`,
			`CREATE TRIGGER bk_fail_write BEFORE ` + kind + ` ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION bk_fail_write()`,
		}
		drop = []string{`DROP TRIGGER bk_fail_write ON ` + table, `DROP FUNCTION bk_fail_write()`}
	}
	exec := func(qs []string) {
		t.Helper()
		for _, q := range qs {
			if _, err := s.DB().ExecContext(context.Background(), q); err != nil {
				t.Fatalf("storagetest: %s: %v", q, err)
			}
		}
	}
	exec(create)
	return func() {
		t.Helper()
		exec(drop)
	}
}

// LockWaiters is the number of Postgres sessions waiting for a lock in a
// statement whose text holds substr (bun writes arguments into the text);
// a test uses it to know that a concurrent writer now waits.
func LockWaiters(t testing.TB, s *storage.Store, substr string) int {
	t.Helper()
	var n int
	err := s.DB().NewRaw("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position(? in query) > 0", substr).
		Scan(context.Background(), &n)
	if err != nil {
		t.Errorf("storagetest: lock waiters: %v", err)
		return -1
	}
	return n
}

// CreateUser stores an active user id with the e-mail address email.
func CreateUser(t testing.TB, s *storage.Store, id, email string) *storage.User {
	t.Helper()
	ctx := context.Background()
	u := &storage.User{ID: id, Email: email, Active: true}
	if err := s.InTx(ctx, func(ctx context.Context) error { return s.CreateUser(ctx, u) }); err != nil {
		t.Fatal(err)
	}
	return u
}
