package storage

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ory/fosite"
	"github.com/uptrace/bun/driver/pgdriver"
	"modernc.org/sqlite"
)

var (
	// ErrNotFound is returned for every missing (or expired) row. It is
	// fosite.ErrNotFound, so fosite recognises it too.
	ErrNotFound = fosite.ErrNotFound
	// ErrConflict is returned when a write violates a unique constraint
	// (an existing client id, a duplicate e-mail address, …).
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable marks a failure to reach the database at all: a
	// connection refused, reset or closed, a server shutting down or
	// restarting, an SQLite file that cannot be opened or written. Nothing
	// the request asked for happened; it may be retried.
	ErrUnavailable = errors.New("storage: database unavailable")
)

// SQLite result codes (sqlite3.h) and Postgres SQLSTATEs that have a meaning here.
const (
	sqliteBusy              = 5
	sqliteLocked            = 6
	sqliteConstraintPK      = 1555
	sqliteConstraintUnique  = 2067
	sqlitePrimaryResultMask = 0xff

	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgLockNotAvailable     = "55P03"
	// Classes 08 (connection exception) and 57 (operator intervention:
	// admin shutdown, crash shutdown, cannot connect now).
	pgClassConnection = "08"
	pgClassOperator   = "57"

	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// classify maps a driver error to ErrNotFound, ErrConflict or
// fosite.ErrSerializationFailure; it returns nil for any other error.
func classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		switch pgErr.Field('C') {
		case pgUniqueViolation:
			return ErrConflict
		case pgSerializationFailure, pgDeadlockDetected, pgLockNotAvailable:
			return fosite.ErrSerializationFailure
		}
		if code := pgErr.Field('C'); strings.HasPrefix(code, pgClassConnection) || strings.HasPrefix(code, pgClassOperator) {
			return ErrUnavailable
		}
		return nil
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		switch {
		case code == sqliteConstraintUnique, code == sqliteConstraintPK:
			return ErrConflict
		case code&sqlitePrimaryResultMask == sqliteBusy, code&sqlitePrimaryResultMask == sqliteLocked:
			return fosite.ErrSerializationFailure
		case code&sqlitePrimaryResultMask == sqliteIOErr, code&sqlitePrimaryResultMask == sqliteFull,
			code&sqlitePrimaryResultMask == sqliteCantOpen:
			return ErrUnavailable
		}
		return nil
	}
	if connectionLost(err) {
		return ErrUnavailable
	}
	return nil
}

// connectionLost reports errors of the connection itself rather than of a
// statement: the network, a connection the server closed, a closed pool.
func connectionLost(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "sql: database is closed")
}

// wrap adds context to a database error and, when it has a meaning the
// callers test for, makes errors.Is find that meaning too.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if kind := classify(err); kind != nil && !errors.Is(err, kind) {
		return fmt.Errorf("storage: %s: %w: %w", op, kind, err)
	}
	return fmt.Errorf("storage: %s: %w", op, err)
}

// notFound is the error for a missing row of the given kind.
func notFound(kind, id string) error {
	return fmt.Errorf("storage: %s %q: %w", kind, id, ErrNotFound)
}
