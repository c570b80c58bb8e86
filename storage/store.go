// Package storage keeps all of Bridgekeeper's state in SQLite or Postgres
// through uptrace/bun: clients, users, identities, sessions, pending logins,
// signing keys, e-mail action tokens, rate counters and every fosite token.
//
// *Store implements the fosite storage interfaces the broker composes
// (client manager, authorize code, access and refresh tokens with rotation,
// revocation, OpenID Connect and PKCE sessions) and fosite's Transactional
// interface: BeginTX puts a bun.Tx into the context and every method takes
// its database handle from the context.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/pgdriver"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names returned by Store.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Store is the Bridgekeeper database. It is safe for concurrent use.
type Store struct {
	dialect string
	// db takes every write. On SQLite it holds a single connection, so
	// writers queue in database/sql instead of sleeping in SQLite's busy
	// handler; its transactions start with BEGIN IMMEDIATE.
	db *bun.DB
	// rdb serves reads outside transactions. On SQLite it is a separate
	// pool of read-only connections (WAL lets readers run beside the
	// writer); on Postgres it is db.
	rdb *bun.DB
}

// sqlitePragmas are applied to every SQLite connection.
var sqlitePragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(1)",
}

// Open connects to the database named by dsn:
//
//	sqlite:PATH                 a SQLite file (created with its directory)
//	postgres://… postgresql://… a Postgres database
//
// Open does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn)
	default:
		return nil, fmt.Errorf("storage: unsupported DSN %q: want sqlite:PATH or postgres://…", redactDSN(dsn))
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openSQLite(ctx context.Context, spec string) (*Store, error) {
	path, extra, _ := strings.Cut(spec, "?")
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return nil, errors.New("storage: sqlite DSN needs a file path: sqlite:PATH")
	}
	if path == ":memory:" || strings.Contains(extra, "mode=memory") {
		return nil, errors.New("storage: in-memory SQLite is not supported (readers and the writer use separate connections); use a file")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("storage: create database directory: %w", err)
	}
	extraQuery, err := url.ParseQuery(extra)
	if err != nil {
		return nil, fmt.Errorf("storage: sqlite DSN options: %w", err)
	}

	writer, err := sql.Open("sqlite", sqliteDSN(path, extraQuery, true, "_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("storage: open sqlite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The writer opens first so the file exists and is in WAL mode before
	// a read-only connection touches it.
	if err := pingSQLite(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}

	// WAL mode is a property of the file: readers need not (and, being
	// read-only, could not) set it.
	reader, err := sql.Open("sqlite", sqliteDSN(path, extraQuery, false, "_pragma", "query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("storage: open sqlite: %w", err)
	}
	readers := max(4, runtime.GOMAXPROCS(0)*2)
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	reader.SetConnMaxLifetime(0)
	reader.SetConnMaxIdleTime(0)

	return &Store{
		dialect: DialectSQLite,
		db:      bun.NewDB(writer, sqlitedialect.New()),
		rdb:     bun.NewDB(reader, sqlitedialect.New()),
	}, nil
}

// pingSQLite opens the first connection. Switching a new file to WAL takes
// a lock that SQLite does not wait for under busy_timeout, so when several
// processes create the same database at once, all but one may get
// SQLITE_BUSY: retry those for up to ten seconds.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		err := db.PingContext(ctx)
		if err == nil || !errors.Is(classify(err), fosite.ErrSerializationFailure) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

func sqliteDSN(path string, extra url.Values, journal bool, key, value string) string {
	q := url.Values{}
	for _, p := range sqlitePragmas {
		if !journal && strings.HasPrefix(p, "journal_mode") {
			continue
		}
		q.Add("_pragma", p)
	}
	for k, vs := range extra {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	q.Add(key, value)
	return path + "?" + q.Encode()
}

func openPostgres(dsn string) (*Store, error) {
	conns := max(16, runtime.GOMAXPROCS(0)*8)
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: postgres DSN: %w", err)
	}
	// max_conns is ours, not a Postgres setting: take it out of the DSN.
	q := u.Query()
	if v := q.Get("max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("storage: postgres DSN: max_conns=%q is not a positive number", v)
		}
		conns = n
		q.Del("max_conns")
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	connector := pgdriver.NewConnector(pgdriver.WithDSN(dsn))
	sqldb := sql.OpenDB(connector)
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns)
	db := bun.NewDB(sqldb, pgdialect.New())
	return &Store{dialect: DialectPostgres, db: db, rdb: db}, nil
}

// redactDSN hides a password in a DSN for error messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Close closes every connection.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("storage: ping: %w", err)
	}
	if s.rdb != s.db {
		if err := s.rdb.PingContext(ctx); err != nil {
			return fmt.Errorf("storage: ping readers: %w", err)
		}
	}
	return nil
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// DB is the underlying bun database (on SQLite, its single writer
// connection). Prefer the Store's methods.
func (s *Store) DB() *bun.DB { return s.db }
