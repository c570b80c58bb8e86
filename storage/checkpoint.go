package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
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
//
// A passive checkpoint never starts the log over: only the writer does,
// when it begins a transaction with every frame already copied. Under
// sustained writes that moment never comes (there are always frames
// committed since the last checkpoint), and the log would grow for as long
// as the load lasts. So when a passive checkpoint leaves a log of
// walRestartFrames or more, the checkpointer runs a RESTART checkpoint on
// the writer connection (taking its turn in the writers' queue: from its
// own connection, SQLite's busy handler would poll for a write lock that
// back-to-back commits never leave free): it copies the few frames still
// to copy and waits for readers to move past the log, so that the next
// commit starts it over. Writers wait for that (milliseconds, once per
// walRestartFrames pages written) instead of for every checkpoint. A
// reader that keeps a snapshot open (a backup, say) would make the
// RESTART wait, and every writer with it: it waits at most restartWait,
// and is tried again after the next passive checkpoint.
const (
	checkpointEvery    = 256
	checkpointInterval = time.Second
	walRestartFrames   = 8192 // pages: 32 MiB of 4 KiB pages
	restartWait        = 20 * time.Millisecond
	// walSizeLimit bounds the log file left behind after a burst: when
	// the writer starts the log over, it truncates a longer file to this.
	walSizeLimit = 64 << 20
)

// checkpointPolicy says when the checkpointer runs: the constants above,
// smaller in tests.
type checkpointPolicy struct {
	every         int64 // commits between passive checkpoints
	restartFrames int   // a log this long is started over
}

type checkpointer struct {
	db       *sql.DB // the checkpointer's own connection
	writer   *sql.DB // the store's writer
	policy   checkpointPolicy
	commits  atomic.Int64
	restarts atomic.Int64 // RESTART checkpoints that succeeded
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	closing  sync.Once
	err      error // of close
}

func startCheckpointer(db, writer *sql.DB, policy checkpointPolicy) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, writer: writer, policy: policy, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// committed counts a commit of the writer. Safe on a nil checkpointer
// (Postgres).
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	if c.commits.Add(1)%c.policy.every == 0 {
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
		if logFrames, err := checkpoint(ctx, c.db, "PASSIVE"); err == nil && logFrames >= c.policy.restartFrames {
			if err := c.restart(ctx); err == nil {
				c.restarts.Add(1)
			}
		}
		cancel()
	}
}

// restart runs a RESTART checkpoint on the writer connection, waiting for
// readers at most restartWait (SQLite's busy timeout, set on that
// connection for the checkpoint and put back after it).
func (c *checkpointer) restart(ctx context.Context) error {
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, busyTimeoutPragma(restartWait)); err != nil {
		return err
	}
	_, err = checkpoint(ctx, conn, "RESTART")
	if _, resetErr := conn.ExecContext(context.WithoutCancel(ctx), busyTimeoutPragma(busyTimeout)); resetErr != nil {
		// Never leave the writer with the short timeout: the pool drops
		// a connection that says it is bad and opens a fresh one.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return errors.Join(err, resetErr)
	}
	return err
}

func busyTimeoutPragma(d time.Duration) string {
	return fmt.Sprintf("PRAGMA busy_timeout = %d", d.Milliseconds())
}

// checkpoint runs one checkpoint in mode on db (a pool or one of its
// connections) and returns the number of frames the log held.
func checkpoint(ctx context.Context, db interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, mode string) (logFrames int, err error) {
	var busy, copied int
	err = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &copied)
	if err == nil && busy != 0 {
		err = fmt.Errorf("storage: %s checkpoint: the database is busy", mode)
	}
	return logFrames, err
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
