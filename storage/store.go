// Package storage keeps all of Bridgekeeper's state in SQLite or Postgres
// through uptrace/bun: clients, users, identities, sessions, pending logins,
// signing keys, e-mail action tokens, rate counters and every fosite token.
//
// Token persistence lives here too, in one place: TokenStore (from
// Store.TokenStore) is what the broker hands to fosite. It implements the
// fosite storage interfaces (client manager, authorization codes, access
// and refresh tokens with rotation and reuse detection, revocation, OpenID
// Connect and PKCE sessions, transactions) on the token tables
// (fosite.go, codeparts.go), records a request's writes in a unit and
// commits them together (tokenunit.go: the write buffer and SQLite's group
// commit), and decides which spent tokens count as replays
// (tokenstore.go). BeginTX puts a transaction into the context and every
// method takes its database handle from the context.
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
	// path is the SQLite database file ("" on Postgres).
	path string
	// db takes every write. On SQLite it holds a single connection, so
	// writers queue in database/sql instead of sleeping in SQLite's busy
	// handler; its transactions start with BEGIN IMMEDIATE.
	db *bun.DB
	// rdb serves reads outside transactions. On SQLite it is a separate
	// pool of read-only connections (WAL lets readers run beside the
	// writer); on Postgres it is db.
	rdb *bun.DB

	// hot runs the hot path's hand-written statements: prepared once per
	// SQLite connection, with bound arguments on Postgres.
	hot *hotSQL
	// checkpoints copies SQLite's write-ahead log into the database file
	// off the commit path (nil on Postgres).
	checkpoints *checkpointer
	// clients, when set, gives token rows their client (a cache, say)
	// instead of a query. See withClientSource.
	clients func(ctx context.Context, id string) (*Client, error)
	// codeSignature, when set, gives the signature an authorization code
	// is stored under. See withAuthorizeCodeSignature.
	codeSignature func(code string) string
}

// busyTimeout is how long a SQLite connection waits for a lock another
// process holds.
const busyTimeout = 5 * time.Second

// sqlitePragmas are applied to every SQLite connection.
var sqlitePragmas = []string{
	fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
	"journal_mode(WAL)",
	"synchronous(NORMAL)",
	"foreign_keys(1)",
}

// sqliteWriterPragmas are applied to the writer connection only: it never
// checkpoints itself (see checkpointer).
var sqliteWriterPragmas = []string{
	"wal_autocheckpoint(0)",
	fmt.Sprintf("journal_size_limit(%d)", walSizeLimit),
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
	if err := CheckDSN(dsn); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if strings.HasPrefix(dsn, "sqlite:") {
		s, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	} else {
		s, err = openPostgres(dsn)
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
	if err := createPrivate(path); err != nil {
		return nil, err
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

	checkpoints, err := sql.Open("sqlite", sqliteDSN(path, extraQuery, false, "", ""))
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("storage: open sqlite: %w", err)
	}
	return &Store{
		dialect:     DialectSQLite,
		path:        path,
		db:          bun.NewDB(writer, sqlitedialect.New()),
		rdb:         bun.NewDB(reader, sqlitedialect.New()),
		hot:         newHotSQL(writer, reader, false),
		checkpoints: startCheckpointer(checkpoints, writer, checkpointPolicy{every: checkpointEvery, restartFrames: walRestartFrames}),
	}, nil
}

// createPrivate creates the database file, empty, readable and writable
// by its owner only, unless it exists. SQLite gives its write-ahead log
// and shared-memory index the database file's permissions, so they are
// private too. An existing file keeps its permissions (the broker warns
// at start when others may read it).
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: create database file: %w", err)
	}
	return f.Close()
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

// sqliteDSN is the DSN of a connection to path: the shared pragmas, the
// writer's own when writer is set, the DSN's extra options, and key=value
// when key is not empty.
func sqliteDSN(path string, extra url.Values, writer bool, key, value string) string {
	q := url.Values{}
	for _, p := range sqlitePragmas {
		if !writer && strings.HasPrefix(p, "journal_mode") {
			continue
		}
		q.Add("_pragma", p)
	}
	if writer {
		for _, p := range sqliteWriterPragmas {
			q.Add("_pragma", p)
		}
	}
	for k, vs := range extra {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	if key != "" {
		q.Add(key, value)
	}
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
	return &Store{dialect: DialectPostgres, db: db, rdb: db, hot: newHotSQL(sqldb, sqldb, true)}, nil
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
	err := s.checkpoints.close()
	s.hot.close()
	err = errors.Join(err, s.db.Close())
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

// withClientSource returns a Store on the same connections whose token
// loads (codes, tokens, PKCE and OpenID Connect sessions) take their client
// from get instead of reading it with the row. The broker passes its client
// cache; get must fail with ErrNotFound for a client that does not exist.
func (s *Store) withClientSource(get func(ctx context.Context, id string) (*Client, error)) *Store {
	c := *s
	c.clients = get
	return &c
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// DB is the underlying bun database (on SQLite, its single writer
// connection), for storage's own test packages (storagetest, conformance):
// nothing outside storage/ issues SQL. Use the Store's methods.
func (s *Store) DB() *bun.DB { return s.db }

// PoolStats are the statistics of the connection pool that takes the
// writes (on SQLite its single writer connection; on Postgres the only
// pool), for metrics.
func (s *Store) PoolStats() sql.DBStats { return s.db.Stats() }

// Files returns the files of an SQLite database: the database, its
// write-ahead log and its shared-memory index (nil on Postgres), for a
// check of their permissions.
func (s *Store) Files() []string {
	if s.path == "" {
		return nil
	}
	return []string{s.path, s.path + "-wal", s.path + "-shm"}
}
