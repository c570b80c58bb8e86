package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
