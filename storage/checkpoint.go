package storage

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite in WAL mode appends every commit to the write-ahead log and, by
// default, copies the log back into the database file ("checkpoints") in
// the connection that happens to commit when the log passes 1000 pages:
// that commit then waits for the copy and two fsyncs while every other
// grant queues behind the single writer. The checkpointer moves that work
// off the commit path: the writer never checkpoints (wal_autocheckpoint
// is 0) and a goroutine with its own connection runs passive checkpoints,
// which never block the writer or readers, after every checkpointEvery
// commits and once per checkpointInterval while anything was written.
const (
	checkpointEvery    = 64
	checkpointInterval = time.Second
	// walSizeLimit bounds the log file left behind after a burst: when
	// the writer starts the log over, it truncates a longer file to this.
	walSizeLimit = 64 << 20
)

type checkpointer struct {
	db      *sql.DB
	commits atomic.Int64
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
	err     error // of close
}

func startCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// committed counts a commit of the writer. Safe on a nil checkpointer
// (Postgres).
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	if c.commits.Add(1)%checkpointEvery == 0 {
		select {
		case c.kick <- struct{}{}:
		default: // one is already due
		}
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		case <-tick.C: // writes outside transactions are not counted
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// A failed checkpoint (the database is busy being migrated, say)
		// is retried with the next one; nothing is lost meanwhile.
		_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		cancel()
	}
}

// close stops the goroutine and closes its connection. Safe on nil and
// more than once.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	c.closing.Do(func() {
		close(c.stop)
		<-c.done
		c.err = c.db.Close()
	})
	return c.err
}
