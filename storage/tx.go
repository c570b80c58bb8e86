package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/uptrace/bun"
)

// txKey is the context key of the running transaction.
type txKey struct{}

// txState is one database transaction, shared by its nested scopes.
type txState struct {
	tx           bun.Tx
	done         atomic.Bool // committed or rolled back
	rollbackOnly atomic.Bool // a nested scope rolled back
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
// transaction, else the writer pool.
func (s *Store) writer(ctx context.Context) bun.IDB {
	if ref := txFrom(ctx); ref != nil && !ref.state.done.Load() {
		return ref.state.tx
	}
	return s.db
}

// reader is the handle for reads: the context's transaction (so a
// transaction sees its own writes), else the reader pool.
func (s *Store) reader(ctx context.Context) bun.IDB {
	if ref := txFrom(ctx); ref != nil && !ref.state.done.Load() {
		return ref.state.tx
	}
	return s.rdb
}

// inTx reports whether ctx carries a live transaction.
func inTx(ctx context.Context) bool {
	ref := txFrom(ctx)
	return ref != nil && !ref.state.done.Load()
}

// BeginTX starts a transaction and returns a context carrying it; every
// Store method called with that context runs inside it. When ctx already
// carries a transaction, BeginTX starts nothing: the returned context joins
// it, and Commit and Rollback on that context leave the real commit to the
// outer scope (a nested Rollback makes the outer Commit fail).
//
// On SQLite a transaction holds the only writer connection until it ends:
// never call the Store with a context that lacks the transaction while
// holding one, and keep slow work (signing) outside.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if ref := txFrom(ctx); ref != nil && !ref.state.done.Load() {
		return context.WithValue(ctx, txKey{}, &txRef{state: ref.state, nested: true}), nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return ctx, s.wrap("begin transaction", err)
	}
	return context.WithValue(ctx, txKey{}, &txRef{state: &txState{tx: tx}}), nil
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
	if !ref.state.done.CompareAndSwap(false, true) {
		return fmt.Errorf("storage: commit: %w", sql.ErrTxDone)
	}
	if ref.state.rollbackOnly.Load() {
		if err := ref.state.tx.Rollback(); err != nil {
			return s.wrap("commit: roll back after a nested rollback", err)
		}
		return errors.New("storage: commit: a nested scope rolled the transaction back")
	}
	if err := ref.state.tx.Commit(); err != nil {
		return s.wrap("commit", err)
	}
	return nil
}

// Rollback rolls back the transaction BeginTX put into ctx. Rolling back a
// finished transaction is not an error.
func (s *Store) Rollback(ctx context.Context) error {
	ref := txFrom(ctx)
	if ref == nil {
		return errors.New("storage: rollback: no transaction in context")
	}
	if ref.nested {
		ref.state.rollbackOnly.Store(true)
		return nil
	}
	if !ref.state.done.CompareAndSwap(false, true) {
		return nil
	}
	if err := ref.state.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
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
