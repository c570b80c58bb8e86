package federation

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// rotatingUpstream behaves like Okta: each refresh token works once and is
// replaced by a new one; a used one is refused as a revocation.
type rotatingUpstream struct {
	mu      sync.Mutex
	current string
	n       int
	revoked bool
}

func (u *rotatingUpstream) LoginURL(context.Context, connectors.LoginRequest) (connectors.LoginResponse, error) {
	return connectors.LoginResponse{}, errors.New("not used")
}

func (u *rotatingUpstream) HandleCallback(context.Context, connectors.CallbackRequest) (connectors.Identity, error) {
	return connectors.Identity{}, errors.New("not used")
}

func (u *rotatingUpstream) Refresh(_ context.Context, _ connectors.Scopes, id connectors.Identity) (connectors.Identity, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.revoked || string(id.ConnectorData) != u.current {
		return connectors.Identity{}, connectors.ErrIdentityRevoked
	}
	u.n++
	u.current = "rt-" + string(rune('a'+u.n))
	id.ConnectorData = []byte(u.current)
	return id, nil
}

// TestRefreshRaceAcrossReplicas: two replicas (two Federations on one
// database, so no shared in-process lock) refresh one identity at once.
// The upstream rotates its refresh token, so one of them presents a used
// token; that must not count as the user being revoked upstream. A real
// revocation still does.
func TestRefreshRaceAcrossReplicas(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store, _ := b.Open(t)
			up := &rotatingUpstream{current: "rt-a"}
			replica := func() *Federation {
				return &Federation{
					cfg:        Config{Store: store, DataKey: testDataKey},
					log:        slog.New(slog.DiscardHandler),
					connectors: map[string]*connector{"okta": {id: "okta", name: "Okta", conn: up}},
				}
			}
			a, bb := replica(), replica()
			u, _, err := a.userFor(ctx, a.connectors["okta"], connectors.Identity{Subject: "s1", Email: "ann@example.com", EmailVerified: true, ConnectorData: []byte("rt-a")})
			if err != nil {
				t.Fatal(err)
			}
			// Replica B read the identity (rt-a) before A's refresh saved rt-b.
			stale, err := store.GetIdentity(ctx, "okta", "s1")
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Refresh(ctx, u.ID, "okta"); err != nil {
				t.Fatalf("first refresh: %v", err)
			}
			if got := bb.refreshedElsewhere(ctx, stale); !got {
				t.Fatal("a refresh saved by another replica was not noticed")
			}
			// B refreshing with what it read: the upstream refuses rt-a,
			// but B sees A's newer data and accepts.
			staleData, err := bb.openData("okta", "s1", stale.ConnectorData)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := up.Refresh(ctx, connectors.Scopes{}, connectors.Identity{ConnectorData: staleData}); !errors.Is(err, connectors.ErrIdentityRevoked) {
				t.Fatalf("upstream accepted a used refresh token: %v", err)
			}
			if err := bb.Refresh(ctx, u.ID, "okta"); err != nil {
				t.Fatalf("refresh on the other replica after the race: %v", err)
			}
			// Concurrent refreshes on both replicas: none may fail.
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := a
					if i%2 == 1 {
						r = bb
					}
					errs <- r.Refresh(ctx, u.ID, "okta")
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if errors.Is(err, connectors.ErrIdentityRevoked) {
					t.Errorf("a racing refresh logged the user out: %v", err)
				}
			}
			// A real revocation upstream still ends the grant.
			up.mu.Lock()
			up.revoked = true
			up.mu.Unlock()
			if err := a.Refresh(ctx, u.ID, "okta"); !errors.Is(err, connectors.ErrIdentityRevoked) {
				t.Fatalf("refresh of a user revoked upstream: %v", err)
			}
		})
	}
}
