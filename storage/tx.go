package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/uptrace/bun"
)

// txKey is the context key of the running transaction.
type txKey struct{}

// txState is one database transaction, shared by its nested scopes. The
// database transaction itself begins lazily, at the first write: until
// then reads go to the reader pool and nothing holds the writer, so work
// done between BeginTX and the first write (signing tokens, say) does not
// block other writers.
type txState struct {
	ctx          context.Context // of BeginTX: the database transaction lives as long as it
	mu           sync.Mutex
	tx           *bun.Tx // nil until the first write
	done         bool    // committed or rolled back
	rollbackOnly bool    // a nested scope rolled back
}

// txRef is what the context carries: the transaction and whether this scope
// owns it (only the owner commits or rolls back for real).
type txRef struct {
	state  *txState
	nested bool
}

func txFrom(ctx context.Context) *txRef {
	ref, _ := ctx.Value(txKey{}).(*txRef)
	return ref
}

// writer is the handle for statements that write: the context's
// transaction (begun now if this is its first write), else the writer pool.
func (s *Store) writer(ctx context.Context) (bun.IDB, error) {
	ref := txFrom(ctx)
	if ref == nil {
		return s.db, nil
	}
	st := ref.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return s.db, nil
	}
	if st.tx == nil {
		tx, err := s.db.BeginTx(st.ctx, nil)
		if err != nil {
			return nil, s.wrap("begin transaction", err)
		}
		st.tx = &tx
	}
	return *st.tx, nil
}

// reader is the handle for reads: the context's transaction once it has
// written (so a transaction sees its own writes), else the reader pool.
func (s *Store) reader(ctx context.Context) bun.IDB {
	if ref := txFrom(ctx); ref != nil {
		st := ref.state
		st.mu.Lock()
		defer st.mu.Unlock()
		if !st.done && st.tx != nil {
			return *st.tx
		}
	}
	return s.rdb
}

// BeginTX starts a transaction and returns a context carrying it; every
// Store method called with that context runs inside it. When ctx already
// carries a transaction, BeginTX starts nothing: the returned context joins
// it, and Commit and Rollback on that context leave the real commit to the
// outer scope (a nested Rollback makes the outer Commit fail).
//
// The database transaction begins at the first write through the returned
// context (reads before it run outside, on the reader pool). From then on,
// on SQLite, it holds the only writer connection until it ends: keep slow
// work (signing) out of that stretch, and never write through a context
// that lacks the transaction meanwhile — that write waits for the
// transaction, which waits for it. After Commit or Rollback the context
// runs its calls without a transaction.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if ref := txFrom(ctx); ref != nil {
		ref.state.mu.Lock()
		done := ref.state.done
		ref.state.mu.Unlock()
		if !done {
			return context.WithValue(ctx, txKey{}, &txRef{state: ref.state, nested: true}), nil
		}
	}
	return context.WithValue(ctx, txKey{}, &txRef{state: &txState{ctx: ctx}}), nil
}

// Commit commits the transaction BeginTX put into ctx.
func (s *Store) Commit(ctx context.Context) error {
	ref := txFrom(ctx)
	if ref == nil {
		return errors.New("storage: commit: no transaction in context")
	}
	if ref.nested {
		return nil
	}
	st := ref.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return fmt.Errorf("storage: commit: %w", sql.ErrTxDone)
	}
	st.done = true
	if st.rollbackOnly {
		if st.tx != nil {
			if err := st.tx.Rollback(); err != nil {
				return s.wrap("commit: roll back after a nested rollback", err)
			}
		}
		return errors.New("storage: commit: a nested scope rolled the transaction back")
	}
	if st.tx == nil {
		return nil // nothing was written
	}
	if err := st.tx.Commit(); err != nil {
		return s.wrap("commit", err)
	}
	s.checkpoints.committed()
	return nil
}

// Rollback rolls back the transaction BeginTX put into ctx. Rolling back a
// finished transaction is not an error.
func (s *Store) Rollback(ctx context.Context) error {
	ref := txFrom(ctx)
	if ref == nil {
		return errors.New("storage: rollback: no transaction in context")
	}
	st := ref.state
	st.mu.Lock()
	defer st.mu.Unlock()
	if ref.nested {
		st.rollbackOnly = true
		return nil
	}
	if st.done {
		return nil
	}
	st.done = true
	if st.tx == nil {
		return nil
	}
	if err := st.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return s.wrap("rollback", err)
	}
	return nil
}

// InTx runs fn in a transaction (joining the one in ctx, if any) and
// commits when fn returns nil.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		if rbErr := s.Rollback(txCtx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return s.Commit(txCtx)
}

// Savepoint statements of InTxEach.
const (
	sqlSavepoint         = "SAVEPOINT each"
	sqlReleaseSavepoint  = "RELEASE SAVEPOINT each"
	sqlRollbackSavepoint = "ROLLBACK TO SAVEPOINT each"
)

// InTxEach runs every fn in one transaction, each as if inside its own
// savepoint: the writes of a fn that fails are undone and its error is
// errs[i], while the others commit together. When the transaction itself
// fails (it cannot begin, a savepoint cannot be rolled back, the commit
// fails), every fn that had not failed gets that error and nothing is
// written. ctx must not carry a transaction.
//
// It lets concurrent requests share one commit: on SQLite every write
// transaction waits for the single writer connection anyway.
//
// Savepoints are not free (SQLite copies every page a savepoint touches
// into a statement journal), and a fn seldom fails: InTxEach first runs
// the fns without them. Only when one fails does it roll everything back
// and run them all again, each in a savepoint. A fn may therefore run
// twice; the first run's writes are undone, but its effects outside the
// database are not.
func (s *Store) InTxEach(ctx context.Context, fns []func(ctx context.Context) error) []error {
	if txFrom(ctx) != nil {
		errs := make([]error, len(fns))
		for i := range errs {
			errs[i] = errors.New("storage: InTxEach inside a transaction")
		}
		return errs
	}
	if len(fns) > 1 {
		if errs, ok := s.inTxEach(ctx, fns, false); ok {
			return errs
		}
	}
	errs, _ := s.inTxEach(ctx, fns, len(fns) > 1)
	return errs
}

// inTxEach is InTxEach's transaction, with a savepoint around each fn or
// none. Without savepoints, a fn that fails rolls the transaction back and
// inTxEach reports !ok, unless it was the only fn: then its error is its
// outcome.
func (s *Store) inTxEach(ctx context.Context, fns []func(ctx context.Context) error, savepoints bool) (errs []error, ok bool) {
	errs = make([]error, len(fns))
	failAll := func(err error) ([]error, bool) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs, true
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return failAll(err)
	}
	db, err := s.writer(txCtx)
	if err != nil {
		return failAll(err)
	}
	defer func() {
		if r := recover(); r != nil {
			_ = s.Rollback(txCtx) // do not keep the writer: the panic goes on
			panic(r)
		}
	}()
	abort := func(err error) ([]error, bool) {
		if rbErr := s.Rollback(txCtx); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		return failAll(err) // nothing is written, not even what succeeded
	}
	st := txFrom(txCtx).state
	run := s.runner(db)
	for i, fn := range fns {
		if savepoints {
			if _, err := run.exec(txCtx, sqlSavepoint); err != nil {
				return abort(s.wrap("savepoint", err))
			}
		}
		err := fn(txCtx)
		st.mu.Lock()
		if st.rollbackOnly && err == nil {
			err = errors.New("storage: a nested scope rolled back")
		}
		st.rollbackOnly = false
		st.mu.Unlock()
		switch {
		case err != nil && !savepoints && len(fns) > 1:
			if rbErr := s.Rollback(txCtx); rbErr != nil {
				return failAll(errors.Join(err, rbErr))
			}
			return nil, false // run them again, each in a savepoint
		case err != nil && !savepoints:
			errs[i] = err
			return abort(err)
		case err != nil:
			errs[i] = err
			if _, rbErr := run.exec(txCtx, sqlRollbackSavepoint); rbErr != nil {
				return abort(s.wrap("roll back to savepoint", rbErr))
			}
		}
		if savepoints {
			if _, err := run.exec(txCtx, sqlReleaseSavepoint); err != nil {
				return abort(s.wrap("release savepoint", err))
			}
		}
	}
	if err := s.Commit(txCtx); err != nil {
		return failAll(err)
	}
	return errs, true
}
