package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
	"github.com/ory/fosite"
)

// Environment of the helper process (see TestMain).
const (
	helperActionEnv = "BRIDGEKEEPER_STORAGE_HELPER"
	helperDSNEnv    = "BRIDGEKEEPER_STORAGE_HELPER_DSN"
)

// TestMain doubles as a helper process: with $BRIDGEKEEPER_STORAGE_HELPER
// set it runs that action against $BRIDGEKEEPER_STORAGE_HELPER_DSN and
// exits, so tests can drive the store from other processes.
func TestMain(m *testing.M) {
	if action := os.Getenv(helperActionEnv); action != "" {
		if err := runHelper(action, os.Getenv(helperDSNEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(action, dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := storage.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	switch action {
	case "migrate":
		return s.Migrate(ctx)
	case "create-client":
		return s.CreateClient(ctx, &storage.Client{ID: "from-another-process", SecretHash: []byte("h"), GrantTypes: []string{"client_credentials"}})
	}
	return fmt.Errorf("unknown helper action %q", action)
}

// helper starts this test binary as a helper process.
func helper(t *testing.T, action, dsn string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperActionEnv+"="+action, helperDSNEnv+"="+dsn)
	return cmd
}

func TestOpenRejectsUnknownDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "mysql://x", "sqlite:", "sqlite::memory:", "/tmp/file.db",
		"postgres://127.0.0.1:1/x?max_conns=0", "postgres://127.0.0.1:1/x?max_conns=many"} {
		if s, err := storage.Open(ctx, dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
	_, err := storage.Open(ctx, "postgres://nobody:secretpw@127.0.0.1:1/none?sslmode=disable&dial_timeout=1s")
	if err == nil {
		t.Fatal("Open of an unreachable Postgres succeeded")
	}
	if strings.Contains(err.Error(), "secretpw") {
		t.Errorf("error reveals the password: %v", err)
	}
}

func TestOpenSQLiteCreatesDirectory(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "bk.db")
	s, err := storage.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dialect() != storage.DialectSQLite {
		t.Errorf("Dialect = %q", s.Dialect())
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	applied, pending, err := s.MigrationStatus(ctx)
	if err != nil || applied != 0 || pending == 0 {
		t.Fatalf("MigrationStatus of a new database = %d, %d, %v; want 0 applied, some pending", applied, pending, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.DB().NewRaw("PRAGMA journal_mode").Scan(ctx, &mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.DB().NewRaw("PRAGMA foreign_keys").Scan(ctx, &fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

// TestSQLiteFilesArePrivate: the SQLite database holds tokens, sessions
// and password hashes: its file, write-ahead log and shared-memory index
// are created readable by their owner only (0600), whatever the umask, and
// Files names them.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask: would give 0644
	defer syscall.Umask(old)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bk.db")
	s, err := storage.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil { // writes: the log and index exist
		t.Fatal(err)
	}
	files := s.Files()
	if want := []string{path, path + "-wal", path + "-shm"}; !slices.Equal(files, want) {
		t.Fatalf("Files() = %v, want %v", files, want)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want -rw-------", f, fi.Mode().Perm())
		}
	}
}

// TestDSNOpensFromAnotherProcess: a store written by another process is
// the same database.
func TestDSNOpensFromAnotherProcess(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, dsn := b.Open(t)
			if s.Dialect() != b.Name {
				t.Errorf("Dialect = %q, want %q", s.Dialect(), b.Name)
			}
			if out, err := helper(t, "create-client", dsn).CombinedOutput(); err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			if _, err := s.LookupClient(context.Background(), "from-another-process"); err != nil {
				t.Fatal(err)
			}
			// Another store of the same backend is isolated from this one.
			other, _ := b.Open(t)
			_, err := other.LookupClient(context.Background(), "from-another-process")
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("a second store sees the first one's client: %v", err)
			}
		})
	}
}

// TestConcurrentMigrate: processes migrating one database at once all
// succeed and apply each migration once.
func TestConcurrentMigrate(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dsn := b.EmptyDSN(t)
			const processes = 3
			var wg sync.WaitGroup
			errs := make([]error, processes)
			outs := make([][]byte, processes)
			for i := range processes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], errs[i] = helper(t, "migrate", dsn).CombinedOutput()
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("migrate process %d: %v\n%s", i, err, outs[i])
				}
			}
			ctx := context.Background()
			s, err := storage.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			applied, pending, err := s.MigrationStatus(ctx)
			if err != nil || applied == 0 || pending != 0 {
				t.Fatalf("MigrationStatus = %d, %d, %v; want all applied", applied, pending, err)
			}
			var rows int
			if err := s.DB().NewRaw("SELECT count(*) FROM schema_migrations").Scan(ctx, &rows); err != nil || rows != applied {
				t.Errorf("schema_migrations has %d rows (%v), want %d", rows, err, applied)
			}
		})
	}
}

// TestNotFoundIsFositeNotFound: the two sentinels agree, so fosite and the
// broker can test either.
func TestNotFoundIsFositeNotFound(t *testing.T) {
	s, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(t)
	_, err := s.GetUser(context.Background(), "nobody")
	if !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("GetUser(nobody) = %v", err)
	}
}

// TestWriteWhileTransactionOpen: a write without the transaction's context
// waits for the transaction instead of failing, and succeeds after it.
func TestWriteWhileTransactionOpen(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			ctx := context.Background()
			tx, err := s.BeginTX(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CreateUser(tx, &storage.User{ID: "in-tx", Email: "a@example.com"}); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.CreateUser(ctx, &storage.User{ID: "outside", Email: "b@example.com"}) }()
			// Reads outside the transaction do not wait and do not see it.
			if _, err := s.GetUser(ctx, "in-tx"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("uncommitted user visible outside the transaction: %v", err)
			}
			if err := s.Commit(tx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("write outside the transaction: %v", err)
			}
			for _, id := range []string{"in-tx", "outside"} {
				if _, err := s.GetUser(ctx, id); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// InTxEach runs the fns once when all succeed; when one fails, the others
// run a second time (each in a savepoint) and only their writes commit.
func TestInTxEachRunsAgainOnlyAfterAFailure(t *testing.T) {
	s, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(t)
	ctx := t.Context()
	var runs [3]int
	prefix := "a"
	user := func(i int, fail bool) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			runs[i]++
			if err := s.CreateUser(ctx, &storage.User{ID: fmt.Sprintf("%s-%d-%d", prefix, i, runs[i]), Active: true}); err != nil {
				return err
			}
			if fail {
				return errors.New("boom")
			}
			return nil
		}
	}
	errs := s.InTxEach(ctx, []func(context.Context) error{user(0, false), user(1, false), user(2, false)})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || runs != [3]int{1, 1, 1} {
		t.Fatalf("all succeed: errs %v, runs %v; want no errors, one run each", errs, runs)
	}
	runs, prefix = [3]int{}, "b"
	errs = s.InTxEach(ctx, []func(context.Context) error{user(0, false), user(1, true), user(2, false)})
	if errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("one fails: errs %v", errs)
	}
	if runs[0] != 2 || runs[1] != 2 {
		t.Fatalf("one fails: runs %v; want the fns before the failure run twice", runs)
	}
	// The second run's writes of the good fns commit; neither run of the
	// failing fn's, nor the first run's of the others, does.
	for id, want := range map[string]bool{"b-0-1": false, "b-0-2": true, "b-1-1": false, "b-1-2": false, "b-2-1": true} {
		_, err := s.GetUser(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("user %s stored = %v (err %v), want %v", id, got, err, want)
		}
	}
}
