package storage

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"

	"github.com/uptrace/bun/driver/pgdriver"
)

// A connection the server ends (as Postgres does to every connection when
// it shuts down or restarts) is classified ErrUnavailable.
func TestTerminatedConnectionIsUnavailable(t *testing.T) {
	dsn := os.Getenv("BRIDGEKEEPER_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("skipping: set BRIDGEKEEPER_TEST_POSTGRES to test Postgres")
	}
	ctx := t.Context()
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	defer db.Close()
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var pid int
	if err := victim.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := db.QueryRowContext(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, ok, err)
	}
	_, err = victim.ExecContext(context.Background(), "SELECT 1")
	if err == nil {
		t.Fatal("a query on a terminated connection succeeded")
	}
	if got := classify(err); !errors.Is(got, ErrUnavailable) {
		t.Errorf("classify(%v) = %v, want ErrUnavailable", err, got)
	}
}
