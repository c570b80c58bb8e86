package rp_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/uptrace/bun/driver/pgdriver"
	_ "modernc.org/sqlite"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// SQLReplayCache is a ReplayCache that the replicas of an API share
// through one SQL database (Postgres, or SQLite for processes on one host),
// in the table
//
//	CREATE TABLE dpop_replay (proof_key TEXT PRIMARY KEY, expires_ms BIGINT NOT NULL)
//
// Claim is one statement: it inserts the key, or takes over its row if that
// has expired; when it changes no row the proof was used already.
type SQLReplayCache struct{ DB *sql.DB }

func (c SQLReplayCache) Claim(ctx context.Context, key string, expires time.Time) error {
	res, err := c.DB.ExecContext(ctx, `INSERT INTO dpop_replay (proof_key, expires_ms) VALUES ($1, $2)
		ON CONFLICT (proof_key) DO UPDATE SET expires_ms = excluded.expires_ms
		WHERE dpop_replay.expires_ms <= $3`, key, expires.UnixMilli(), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("dpop replay cache: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("dpop replay cache: %w", err)
	}
	if n == 0 {
		return rp.ErrProofReplayed
	}
	return nil
}

// Sweep deletes the expired rows; run it now and then (every few minutes).
func (c SQLReplayCache) Sweep(ctx context.Context) error {
	if _, err := c.DB.ExecContext(ctx, `DELETE FROM dpop_replay WHERE expires_ms <= $1`, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("dpop replay cache: sweep: %w", err)
	}
	return nil
}

// replicaDatabases opens two connection pools to one database, one per API
// replica: a SQLite file, and the Postgres of BRIDGEKEEPER_TEST_POSTGRES
// (in a schema of its own) when it is set.
func replicaDatabases(t *testing.T) map[string][2]*sql.DB {
	t.Helper()
	open := func(driver, dsn string) *sql.DB {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	const table = `CREATE TABLE dpop_replay (proof_key TEXT PRIMARY KEY, expires_ms BIGINT NOT NULL)`
	dsn := "file:" + filepath.Join(t.TempDir(), "replay.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	lite := [2]*sql.DB{open("sqlite", dsn), open("sqlite", dsn)}
	if _, err := lite[0].Exec(table); err != nil {
		t.Fatal(err)
	}
	dbs := map[string][2]*sql.DB{"sqlite": lite}

	pg := os.Getenv("BRIDGEKEEPER_TEST_POSTGRES")
	if pg == "" {
		t.Log("BRIDGEKEEPER_TEST_POSTGRES unset: Postgres not tested")
		return dbs
	}
	schema := "rp_replay_" + strings.ToLower(rand.Text()[:10])
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(pg)))
	t.Cleanup(func() { admin.Close() })
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	replica := func() *sql.DB {
		db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(pg),
			pgdriver.WithConnParams(map[string]any{"search_path": schema})))
		t.Cleanup(func() { db.Close() })
		return db
	}
	postgres := [2]*sql.DB{replica(), replica()}
	if _, err := postgres[0].Exec(table); err != nil {
		t.Fatal(err)
	}
	dbs["postgres"] = postgres
	return dbs
}

// TestSQLReplayCacheSharedByReplicas runs docs/rp.md's shared replay cache
// under two API replicas: a proof used at one is refused at the other;
// eight replicas racing with one proof accept it once; an expired row is
// taken over, and swept.
func TestSQLReplayCacheSharedByReplicas(t *testing.T) {
	iss := rptest.NewIssuer(t)
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	const url = "https://api.example.test/profile"
	for name, dbs := range replicaDatabases(t) {
		t.Run(name, func(t *testing.T) {
			replica := func(db *sql.DB) string {
				return dpopAPI(t, newVerifier(t, iss, rp.WithPublicURL("https://api.example.test"),
					rp.WithReplayCache(SQLReplayCache{DB: db}))).URL + "/profile"
			}
			a, b := replica(dbs[0]), replica(dbs[1])
			proof := key.Proof("GET", url, token)
			dpopCall(t, "GET", a, "DPoP", token, proof).wantAccepted(t, "replica A", "alice")
			dpopCall(t, "GET", b, "DPoP", token, proof).wantRefused(t, "the same proof at replica B", "invalid_dpop_proof")

			proof = key.Proof("GET", url, token)
			if accepted := racingAccepts(t, []string{a, b}, 8, token, proof); accepted != 1 {
				t.Errorf("one proof sent 8 times at once to two replicas was accepted %d times, want 1", accepted)
			}

			cache := SQLReplayCache{DB: dbs[0]}
			ctx := t.Context()
			if err := cache.Claim(ctx, "k", time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := cache.Claim(ctx, "k", time.Now().Add(time.Minute)); err != nil {
				t.Errorf("an expired row is not taken over: %v", err)
			}
			if err := cache.Claim(ctx, "k", time.Now().Add(time.Minute)); err != rp.ErrProofReplayed {
				t.Errorf("a live row claimed again: %v, want ErrProofReplayed", err)
			}
			if err := cache.Claim(ctx, "old", time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if err := cache.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := dbs[1].QueryRow(`SELECT count(*) FROM dpop_replay WHERE proof_key = 'old'`).Scan(&n); err != nil || n != 0 {
				t.Errorf("Sweep left the expired row: %d, %v", n, err)
			}
		})
	}
}
