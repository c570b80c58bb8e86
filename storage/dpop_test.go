package storage_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestClaimDPoPProof: a proof id is claimed once until it expires, also by
// racing claimers and by a second store on the same database (a replica);
// DeleteExpired removes expired claims.
func TestClaimDPoPProof(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, dsn := b.Open(t)
			replica, err := storage.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer replica.Close()
			exp := time.Now().Add(time.Minute)
			if err := s.ClaimDPoPProof(ctx, "p1", exp); err != nil {
				t.Fatalf("first claim: %v", err)
			}
			if err := s.ClaimDPoPProof(ctx, "p1", exp); !errors.Is(err, storage.ErrProofReplayed) {
				t.Fatalf("second claim: %v", err)
			}
			if err := replica.ClaimDPoPProof(ctx, "p1", exp); !errors.Is(err, storage.ErrProofReplayed) {
				t.Fatalf("claim at the replica: %v", err)
			}

			var won atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st := s
					if i%2 == 1 {
						st = replica
					}
					err := st.ClaimDPoPProof(ctx, "race", exp)
					switch {
					case err == nil:
						won.Add(1)
					case !errors.Is(err, storage.ErrProofReplayed):
						t.Errorf("racing claim: %v", err)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Fatalf("%d racing claims won, want 1", won.Load())
			}

			// An expired claim may be taken over, and is collected.
			past := time.Now().Add(-time.Second)
			if err := s.ClaimDPoPProof(ctx, "old", past); err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimDPoPProof(ctx, "old", exp); err != nil {
				t.Fatalf("claim over an expired one: %v", err)
			}
			if err := s.ClaimDPoPProof(ctx, "gone", past); err != nil {
				t.Fatal(err)
			}
			n, err := s.DeleteExpired(ctx, time.Now())
			if err != nil || n != 1 {
				t.Fatalf("DeleteExpired = %d, %v; want the one expired claim", n, err)
			}
		})
	}
}

// TestClientRequireDPoPStored: require_dpop round-trips through create,
// lookup, list and update.
func TestClientRequireDPoPStored(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			c := &storage.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:5173/cb"}, RequireDPoP: true}
			if err := s.CreateClient(ctx, c); err != nil {
				t.Fatal(err)
			}
			got, err := s.LookupClient(ctx, "spa")
			if err != nil || !got.RequireDPoP {
				t.Fatalf("lookup: %+v, %v", got, err)
			}
			got.RequireDPoP = false
			if err := s.UpdateClient(ctx, got); err != nil {
				t.Fatal(err)
			}
			list, err := s.ListClients(ctx)
			if err != nil || len(list) != 1 || list[0].RequireDPoP {
				t.Fatalf("list after update: %+v, %v", list, err)
			}
		})
	}
}
