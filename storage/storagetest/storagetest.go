// Package storagetest gives tests fresh, migrated, isolated stores on every
// backend available: SQLite always, Postgres when
// $BRIDGEKEEPER_TEST_POSTGRES holds a DSN (for example
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable).
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/uptrace/bun/driver/pgdriver"
)

// PostgresEnv names the environment variable holding the Postgres DSN that
// switches the Postgres backend on.
const PostgresEnv = "BRIDGEKEEPER_TEST_POSTGRES"

// Backend is one database backend.
type Backend struct {
	Name string // "sqlite" or "postgres"
}

// Backends lists the backends to test: sqlite always, postgres too when
// $BRIDGEKEEPER_TEST_POSTGRES is set.
func Backends(t testing.TB) []Backend {
	t.Helper()
	backends := []Backend{{Name: storage.DialectSQLite}}
	if os.Getenv(PostgresEnv) != "" {
		backends = append(backends, Backend{Name: storage.DialectPostgres})
	}
	return backends
}

// Open returns a fresh, migrated store of this backend, isolated from every
// other call, and the DSN that opens the same database (from this or
// another process). SQLite uses a file in t.TempDir(); Postgres a new
// schema (selected by search_path in the DSN), dropped at cleanup. The store is closed at cleanup.
func (b Backend) Open(t testing.TB) (*storage.Store, string) {
	t.Helper()
	dsn := b.EmptyDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := storage.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storagetest: open %s: %v", b.Name, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storagetest: close %s: %v", b.Name, err)
		}
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storagetest: migrate %s: %v", b.Name, err)
	}
	return s, dsn
}

// EmptyDSN returns the DSN of a fresh, empty, unmigrated database of this
// backend (for tests of migrations and of processes that open their own
// store), removed at cleanup.
func (b Backend) EmptyDSN(t testing.TB) string {
	t.Helper()
	switch b.Name {
	case storage.DialectSQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "bridgekeeper.db")
	case storage.DialectPostgres:
		return createPostgresSchema(t)
	}
	t.Fatalf("storagetest: unknown backend %q", b.Name)
	return ""
}

// RestartSafeDSN returns the DSN of a fresh, empty, unmigrated Postgres
// schema in the database of $BRIDGEKEEPER_TEST_POSTGRES (selected by
// search_path), for a test that restarts the server: the schema is created
// and, at cleanup, dropped over connections of their own, opened for the
// one statement (a connection older than the restart is gone).
func RestartSafeDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		t.Fatalf("storagetest: $%s is not set", PostgresEnv)
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	name := "bk_res_" + hex.EncodeToString(suffix[:])
	if err := execAdmin(admin, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("storagetest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := execAdmin(admin, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Errorf("storagetest: drop schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storagetest: $%s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// execAdmin runs one statement on the database of dsn over a connection
// of its own, closed after; it gives up after 30 s.
func execAdmin(dsn, query string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	defer db.Close()
	_, err := db.ExecContext(ctx, query)
	return err
}

// createPostgresSchema creates an empty schema named bk_<random> in the
// database of $BRIDGEKEEPER_TEST_POSTGRES, drops it at cleanup, and returns
// a DSN whose search_path selects it (much faster than a database per
// test). The DSN also turns synchronous_commit off for speed and limits the
// store to 8 connections.
func createPostgresSchema(t testing.TB) string {
	t.Helper()
	adminDSN := os.Getenv(PostgresEnv)
	if adminDSN == "" {
		t.Fatalf("storagetest: $%s is not set", PostgresEnv)
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatalf("storagetest: $%s: %v", PostgresEnv, err)
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		t.Fatalf("storagetest: %v", err)
	}
	name := "bk_" + hex.EncodeToString(suffix[:])

	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(adminDSN)))
	admin.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		admin.Close()
		t.Fatalf("storagetest: create schema %s: %v", name, err)
	}
	// Registered before the store's own cleanup, so it runs after it.
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS %s CASCADE", name)); err != nil {
			t.Errorf("storagetest: drop schema %s: %v", name, err)
		}
	})

	q := u.Query()
	q.Set("search_path", name)
	q.Set("synchronous_commit", "off")
	// Tests open many stores; keep each one's share of the server's
	// connections small.
	q.Set("max_conns", "8")
	u.RawQuery = q.Encode()
	return u.String()
}
