package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The writer never checkpoints; the background checkpointer copies the
// write-ahead log into the database file soon after the writes.
func TestBackgroundCheckpoint(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bk.db")
	s, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.db.NewRaw("PRAGMA wal_autocheckpoint").Scan(ctx, &auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * checkpointEvery {
		u := &User{ID: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@example.com", i), Active: true}
		if err := s.InTx(ctx, func(ctx context.Context) error { return s.CreateUser(ctx, u) }); err != nil {
			t.Fatal(err)
		}
	}
	var pages, pageSize int64
	if err := s.db.NewRaw("PRAGMA page_count").Scan(ctx, &pages); err != nil {
		t.Fatal(err)
	}
	if err := s.db.NewRaw("PRAGMA page_size").Scan(ctx, &pageSize); err != nil {
		t.Fatal(err)
	}
	// Once every page is checkpointed, the database file holds them all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() >= pages*pageSize {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file has %d bytes after 10 s, want %d pages of %d bytes: nothing checkpointed the log", fi.Size(), pages, pageSize)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Closing a store stops its checkpointer, and closing twice is harmless.
func TestCloseStopsCheckpointer(t *testing.T) {
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bk.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.checkpoints.done:
	default:
		t.Fatal("checkpointer still running after Close")
	}
	if err := s.checkpoints.close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// Under writes without a pause, a passive checkpoint never catches up with
// the writer, so the log is never started over: the checkpointer restarts
// it once it is long, and the log file stays bounded however much is
// written.
func TestLogStartsOverUnderSustainedWrites(t *testing.T) {
	ctx := t.Context()
	s, path := storeWithoutCheckpointer(t)
	const restartFrames = 64
	startTestCheckpointer(t, s, path, checkpointPolicy{every: 8, restartFrames: restartFrames})

	// Two writers and a reader, none pausing.
	const commits = 3000
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range commits / 2 {
				u := &User{ID: fmt.Sprintf("u%d-%d", w, i), Email: fmt.Sprintf("u%d-%d@example.com", w, i), Active: true}
				if err := s.InTx(ctx, func(ctx context.Context) error { return s.CreateUser(ctx, u) }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.GetUser(ctx, "u0-0"); err != nil && !errors.Is(err, ErrNotFound) {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	reader.Wait()

	if s.checkpoints.restarts.Load() == 0 {
		t.Fatal("no RESTART checkpoint ran")
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// Each commit adds a handful of pages; without restarts the log holds
	// every one of them (over ten thousand pages). With them, the file
	// only grows to what is written between two restarts: a few hundred
	// frames on an idle machine, up to ~2,300 seen on a machine loaded
	// twenty-fold (the checkpointer starved of CPU). The bound is half
	// of what no restart leaves, so that load cannot fail it and a
	// checkpointer that never starts the log over still does.
	const pageSize = 4096
	const bound = 80 * restartFrames
	if frames := fi.Size() / (pageSize + 24); frames > bound {
		t.Fatalf("log file holds %d frames after %d commits, want at most %d: it was not started over", frames, commits, bound)
	}
}

// A reader that keeps an old snapshot open (a backup, say) keeps the log
// from starting over; writes go on meanwhile, and once it lets go, the
// next restart succeeds.
func TestRestartWaitsOutALongReader(t *testing.T) {
	ctx := t.Context()
	s, path := storeWithoutCheckpointer(t) // until the reader holds its snapshot

	n := 0
	write := func(count int) {
		t.Helper()
		for range count {
			n++
			u := &User{ID: fmt.Sprintf("u%d", n), Email: fmt.Sprintf("u%d@example.com", n), Active: true}
			if err := s.InTx(ctx, func(ctx context.Context) error { return s.CreateUser(ctx, u) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(10)

	// Another process's reader, in a read transaction on an old snapshot.
	other, err := sql.Open("sqlite", sqliteDSN(path, nil, false, "_pragma", "query_only(1)"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	snapshot, err := other.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var before int
	if err := snapshot.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&before); err != nil {
		t.Fatal(err)
	}
	startTestCheckpointer(t, s, path, checkpointPolicy{every: 8, restartFrames: 32})

	write(200) // dozens of checkpoints, and restarts that cannot finish
	if got := s.checkpoints.restarts.Load(); got != 0 {
		t.Fatalf("%d restarts succeeded while a reader held an old snapshot", got)
	}
	var still int
	if err := snapshot.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&still); err != nil || still != before {
		t.Fatalf("the reader's snapshot changed: %d users, then %d (%v)", before, still, err)
	}
	if err := snapshot.Rollback(); err != nil {
		t.Fatal(err)
	}

	for range 100 {
		write(8)
		if s.checkpoints.restarts.Load() > 0 {
			return
		}
	}
	t.Fatal("no restart succeeded after the reader let go")
}

// storeWithoutCheckpointer is a migrated SQLite store whose checkpointer is
// stopped, and the path of its file.
func storeWithoutCheckpointer(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bk.db")
	s, err := Open(t.Context(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.checkpoints.close(); err != nil {
		t.Fatal(err)
	}
	s.checkpoints = nil
	return s, path
}

// startTestCheckpointer gives s a checkpointer with policy (thresholds
// small enough for a test); the store's Close stops it.
func startTestCheckpointer(t *testing.T, s *Store, path string, policy checkpointPolicy) {
	t.Helper()
	conn, err := sql.Open("sqlite", sqliteDSN(path, nil, false, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	s.checkpoints = startCheckpointer(conn, s.db.DB, policy)
}
