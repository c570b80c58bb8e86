package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
)

// Concurrent requests' writes share commits; each request gets its own
// outcome, and a failing request's writes are undone without touching
// the others'.
func TestGroupCommit(t *testing.T) {
	store := openSQLiteForTest(t)
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
			errs[i] = g.apply(ctx, store, false, ops)
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
	store := openSQLiteForTest(t)
	ctx := context.Background()
	var g groupCommit
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want the write's panic", r)
			}
		}()
		_ = g.apply(ctx, store, false, []func(ctx context.Context) error{
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
	if err := g.apply(ctx, store, false, []func(ctx context.Context) error{
		func(ctx context.Context) error { return store.CreateClient(ctx, serviceClient("after-panic")) },
	}); err != nil {
		t.Fatalf("a grant after the panic: %v", err)
	}
	if _, err := store.LookupClient(ctx, "before-panic"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the panicking grant's write: %v, want it rolled back", err)
	}
}

// openSQLiteForTest is a fresh, migrated SQLite store, closed at cleanup
// (storagetest imports this package, so its internal tests cannot use it).
func openSQLiteForTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "bridgekeeper.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// fosite re-reads the code when it builds the token response and calls a
// code invalidated meanwhile (by a concurrent exchange) a server error; the
// loser of that race must get invalid_grant, not a 500. Other server
// errors stay server errors.
func TestLostRaceIsInvalidGrant(t *testing.T) {
	race := fosite.ErrServerError.WithWrap(fmt.Errorf("storage: authorize code: %w", fosite.ErrInvalidatedAuthorizeCode))
	var rfc *fosite.RFC6749Error
	if err := lostRace(race); !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" {
		t.Errorf("lost code race: %v, want invalid_grant", err)
	}
	rotated := fosite.ErrServerError.WithWrap(fmt.Errorf("storage: refresh token: %w", fosite.ErrInactiveToken))
	if err := lostRace(rotated); !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" {
		t.Errorf("lost refresh race: %v, want invalid_grant", err)
	}
	other := fosite.ErrServerError.WithWrap(errors.New("disk full"))
	if err := lostRace(other); !errors.As(err, &rfc) || rfc.ErrorField != "server_error" {
		t.Errorf("other failure: %v, want server_error", err)
	}
	refused := fosite.ErrInvalidRequest.WithHint("bad")
	if err := lostRace(refused); !errors.Is(err, fosite.ErrInvalidRequest) {
		t.Errorf("protocol error changed: %v", err)
	}
}

// serviceClient is a valid client to write (a confidential
// client_credentials one), for tests that need any write.
func serviceClient(id string) *Client {
	return &Client{ID: id, SecretHash: []byte("hash"), GrantTypes: []string{"client_credentials"}}
}

// A leader waits for the units in flight (begun and not yet applied or
// ended) so that one commit carries them all; units that end without
// applying (a request refused before Run), whose fn fails or that write
// nothing stop counting. The wait limit is a minute: only the count can
// end the wait in time for this test.
func TestGroupCommitGathersUnitsInFlight(t *testing.T) {
	store := openSQLiteForTest(t)
	ts := store.TokenStore(TokenStoreConfig{})
	ts.commits.maxGather = time.Minute
	ctx := context.Background()
	const writers = 5
	type unit struct {
		ctx context.Context
		end func()
	}
	var units []unit
	for range writers + 3 {
		u, end := ts.WithUnit(ctx)
		units = append(units, unit{u, end})
	}
	errs := make([]error, len(units))
	var wg sync.WaitGroup
	for i, u := range units {
		wg.Go(func() {
			defer u.end()
			switch {
			case i < writers:
				errs[i] = ts.Run(u.ctx, func(ctx context.Context) error {
					return ts.Record(ctx, func(ctx context.Context) error {
						return store.CreateClient(ctx, serviceClient(fmt.Sprintf("c%d", i)))
					})
				})
			case i == writers: // refused before Run: only end
			case i == writers+1: // fails while signing
				if err := ts.Run(u.ctx, func(ctx context.Context) error { return fosite.ErrInvalidGrant }); err == nil {
					errs[i] = errors.New("a failing fn succeeded")
				}
			default: // writes nothing
				errs[i] = ts.Run(u.ctx, func(context.Context) error { return nil })
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("unit %d: %v", i, err)
		}
	}
	g := &ts.commits
	if c, n := g.commits.Load(), g.units.Load(); c != 1 || n != writers {
		t.Errorf("%d commits carried %d units, want 1 commit of %d", c, n, writers)
	}
	if g.inFlight != 0 || g.leading || len(g.pending) != 0 {
		t.Errorf("after the units: %d in flight, leading %v, %d pending", g.inFlight, g.leading, len(g.pending))
	}

	// Right after a group of several, a leader waits for as many (here
	// in vain: only its wait limit ends the wait).
	g.maxGather, g.recentCommit = time.Millisecond, time.Minute
	gathers := g.gathers.Load()
	u, end := ts.WithUnit(ctx)
	defer end()
	if err := ts.Run(u, func(ctx context.Context) error {
		return ts.Record(ctx, func(ctx context.Context) error { return store.CreateClient(ctx, serviceClient("after")) })
	}); err != nil {
		t.Fatal(err)
	}
	if n := g.gathers.Load() - gathers; n != 1 {
		t.Errorf("a unit right after a group of %d waited %d times, want once", writers, n)
	}
}

// A unit alone commits at once: no leader waits when nothing else is in
// flight, including units that ended (twice, or after Run) or panicked,
// and the last commit carried one unit.
func TestGroupCommitLoneUnitDoesNotWait(t *testing.T) {
	store := openSQLiteForTest(t)
	ts := store.TokenStore(TokenStoreConfig{})
	ts.commits.maxGather, ts.commits.recentCommit = time.Minute, time.Minute
	ctx := context.Background()

	_, end := ts.WithUnit(ctx)
	end()
	end()
	func() {
		u, end := ts.WithUnit(ctx)
		defer end()
		defer func() { _ = recover() }()
		_ = ts.Run(u, func(context.Context) error { panic("boom") })
	}()
	for i := range 3 {
		u, end := ts.WithUnit(ctx)
		err := ts.Run(u, func(ctx context.Context) error {
			return ts.Record(ctx, func(ctx context.Context) error {
				return store.CreateClient(ctx, serviceClient(fmt.Sprintf("lone-%d", i)))
			})
		})
		end()
		if err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
	g := &ts.commits
	if n := g.gathers.Load(); n != 0 {
		t.Errorf("leaders waited %d times for units in flight, want never", n)
	}
	if c, n := g.commits.Load(), g.units.Load(); c != 3 || n != 3 {
		t.Errorf("%d commits carried %d units, want 3 of 1", c, n)
	}
	if g.inFlight != 0 {
		t.Errorf("%d units in flight after the last ended", g.inFlight)
	}
}
