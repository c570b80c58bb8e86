package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Concurrent requests' writes share commits; each request gets its own
// outcome, and a failing request's writes are undone without touching
// the others'.
func TestGroupCommit(t *testing.T) {
	store, _ := storagetest.Backend{Name: "sqlite"}.Open(t)
	ctx := context.Background()
	var g groupCommit
	const n = 40
	boom := errors.New("boom")
	fails := func(i int) bool { return i%7 == 3 }
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ops := []func(ctx context.Context) error{
				func(ctx context.Context) error {
					return store.CreateClient(ctx, serviceClient(fmt.Sprintf("c%d", i)))
				},
				func(ctx context.Context) error {
					if fails(i) {
						return boom
					}
					return store.CreateClient(ctx, serviceClient(fmt.Sprintf("c%d-b", i)))
				},
			}
			errs[i] = g.apply(ctx, store, ops)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if fails(i) != errors.Is(err, boom) || (!fails(i) && err != nil) {
			t.Errorf("request %d: %v", i, err)
		}
		for _, id := range []string{fmt.Sprintf("c%d", i), fmt.Sprintf("c%d-b", i)} {
			_, lerr := store.LookupClient(ctx, id)
			if stored := lerr == nil; stored == fails(i) {
				t.Errorf("request %d: client %s stored: %v (%v)", i, id, stored, lerr)
			}
		}
	}
	if g.leading || len(g.pending) != 0 {
		t.Errorf("after the requests: leading %v, %d pending", g.leading, len(g.pending))
	}
}

// A write that panics fails its group, re-panics in its request, and
// leaves neither the lead nor SQLite's writer taken.
func TestGroupCommitPanic(t *testing.T) {
	store, _ := storagetest.Backend{Name: "sqlite"}.Open(t)
	ctx := context.Background()
	var g groupCommit
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the write's panic", r)
			}
		}()
		_ = g.apply(ctx, store, []func(ctx context.Context) error{
			func(ctx context.Context) error {
				if err := store.CreateClient(ctx, serviceClient("before-panic")); err != nil {
					return err
				}
				panic("boom")
			},
		})
	}()
	if g.leading {
		t.Error("the lead is still taken after the panic")
	}
	if err := g.apply(ctx, store, []func(ctx context.Context) error{
		func(ctx context.Context) error { return store.CreateClient(ctx, serviceClient("after-panic")) },
	}); err != nil {
		t.Fatalf("a grant after the panic: %v", err)
	}
	if _, err := store.LookupClient(ctx, "before-panic"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the panicking grant's write: %v, want it rolled back", err)
	}
}

// serviceClient is a valid client to write (a confidential
// client_credentials one), for tests that need any write.
func serviceClient(id string) *storage.Client {
	return &storage.Client{ID: id, SecretHash: []byte("hash"), GrantTypes: []string{"client_credentials"}}
}
