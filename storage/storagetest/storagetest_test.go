package storagetest

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestRestartSafeDSN: the DSN opens an empty schema of its own, a store
// migrates it, and the schema is gone after the test that asked for it.
func TestRestartSafeDSN(t *testing.T) {
	if os.Getenv(PostgresEnv) == "" {
		t.Skipf("needs $%s", PostgresEnv)
	}
	var schema string
	t.Run("use", func(t *testing.T) {
		dsn := RestartSafeDSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema = u.Query().Get("search_path")
		s, err := storage.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if schema == "" {
		t.Fatal("no search_path in the DSN")
	}
	// Creating it again succeeds only if the cleanup dropped it.
	admin := os.Getenv(PostgresEnv)
	if err := execAdmin(admin, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("the schema %s outlived its test: %v", schema, err)
	}
	if err := execAdmin(admin, "DROP SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
}
