package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// hotSQL runs the statements of the token endpoint's hot path (token rows
// and clients), written by hand with bound arguments. bun puts every value
// into the SQL text, so SQLite would parse each of its statements anew;
// these are prepared once per SQLite connection instead. On Postgres they
// run unprepared (pgdriver binds the arguments itself) with $n
// placeholders.
type hotSQL struct {
	postgres bool
	writer   *stmtCache
	reader   *stmtCache // == writer on Postgres
	rebound  sync.Map   // query with ? → query with $n (Postgres)
}

func newHotSQL(writer, reader *sql.DB, postgres bool) *hotSQL {
	h := &hotSQL{postgres: postgres, writer: newStmtCache(writer)}
	h.reader = h.writer
	if reader != writer {
		h.reader = newStmtCache(reader)
	}
	return h
}

func (h *hotSQL) close() {
	h.writer.close()
	if h.reader != h.writer {
		h.reader.close()
	}
}

// stmtCache holds statements prepared on one pool.
type stmtCache struct {
	db      *sql.DB
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool // being prepared in the background
	closed  bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: map[string]*sql.Stmt{}, pending: map[string]bool{}}
}

func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[query]
}

// prepare prepares query on the pool, which takes one of its connections:
// never call it while a transaction holds the pool's only connection (see
// prepareLater).
func (c *stmtCache) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.stmts[query]; prev != nil || c.closed {
		st.Close()
		return prev, nil
	}
	c.stmts[query] = st
	return st, nil
}

// prepareLater prepares query in the background, once the connection a
// transaction holds is free again.
func (c *stmtCache) prepareLater(query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[query] || c.stmts[query] != nil || c.closed {
		return
	}
	c.pending[query] = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = c.prepare(ctx, query) // on failure the statement keeps running unprepared
		c.mu.Lock()
		delete(c.pending, query)
		c.mu.Unlock()
	}()
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}

// rebind turns ? placeholders into Postgres's $1, $2, … (the hot path's
// statements have no other question marks).
func (h *hotSQL) rebind(query string) string {
	if q, ok := h.rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	h.rebound.Store(query, b.String())
	return b.String()
}

// sqlRunner runs hot-path statements on a pool or in a transaction.
type sqlRunner struct {
	hot   *hotSQL
	db    *sql.DB // nil in a transaction
	tx    *sql.Tx
	stmts *stmtCache // of db, or of the pool tx belongs to
}

// runner is the sqlRunner for a handle from Store.writer or Store.reader.
func (s *Store) runner(h bun.IDB) sqlRunner {
	switch v := h.(type) {
	case bun.Tx:
		return sqlRunner{hot: s.hot, tx: v.Tx, stmts: s.hot.writer}
	case *bun.DB:
		if v == s.rdb {
			return sqlRunner{hot: s.hot, db: v.DB, stmts: s.hot.reader}
		}
		return sqlRunner{hot: s.hot, db: v.DB, stmts: s.hot.writer}
	}
	panic(fmt.Sprintf("storage: unexpected database handle %T", h))
}

// stmt is query's prepared statement for this runner, or nil (Postgres, or
// not prepared yet).
func (r sqlRunner) stmt(ctx context.Context, query string) *sql.Stmt {
	if r.hot.postgres {
		return nil
	}
	st := r.stmts.lookup(query)
	if st == nil {
		if r.tx != nil {
			// On SQLite the transaction holds the writer's only
			// connection: preparing on the pool now would wait for it.
			r.stmts.prepareLater(query)
			return nil
		}
		st, _ = r.stmts.prepare(ctx, query) // on failure, run it unprepared
		if st == nil {
			return nil
		}
	}
	if r.tx != nil {
		return r.tx.StmtContext(ctx, st)
	}
	return st
}

func (r sqlRunner) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if r.hot.postgres {
		query = r.hot.rebind(query)
	}
	if r.tx != nil {
		return r.tx.ExecContext(ctx, query, args...)
	}
	return r.db.ExecContext(ctx, query, args...)
}

func (r sqlRunner) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if r.hot.postgres {
		query = r.hot.rebind(query)
	}
	if r.tx != nil {
		return r.tx.QueryContext(ctx, query, args...)
	}
	return r.db.QueryContext(ctx, query, args...)
}

// sqlTime is a time as bun stores it (a string SQLite compares in time
// order; Postgres casts it to timestamptz).
func sqlTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999-07:00")
}

// sqlList is a list as bun stores it: a JSON array in a text column. A
// list of plain strings (scopes, audiences) is written directly, as
// encoding/json would write it.
func sqlList(a []string) (string, error) {
	if a == nil {
		return "[]", nil
	}
	if plainList(a) {
		n := 2 + len(a)*3
		for _, v := range a {
			n += len(v)
		}
		var b strings.Builder
		b.Grow(n)
		b.WriteByte('[')
		for i, v := range a {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('"')
			b.WriteString(v)
			b.WriteByte('"')
		}
		b.WriteByte(']')
		return b.String(), nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("storage: encode list: %w", err)
	}
	return string(b), nil
}

// plainList reports whether encoding/json writes every string of a as it
// is, between quotes: printable ASCII other than the characters it
// escapes (" \ < > &).
func plainList(a []string) bool {
	for _, v := range a {
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
				return false
			}
		}
	}
	return true
}

// scanOne scans the first row of rows into dest (a bun model, or a
// rowScanner) and closes
// rows; no row is sql.ErrNoRows.
func (s *Store) scanOne(ctx context.Context, rows *sql.Rows, dest any) error {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	var err error
	if r, ok := dest.(rowScanner); ok {
		err = r.scanRow(rows)
	} else {
		err = s.db.ScanRow(ctx, rows, dest)
	}
	if err != nil {
		return err
	}
	return rows.Close()
}
