package storage

import (
	"database/sql"
	"errors"
	"fmt"

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
		}
	}
	return nil
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
