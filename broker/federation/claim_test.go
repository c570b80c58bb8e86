package federation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestClaimState: the upstream state of a pending login is used up by
// exactly one claim, even by callers that read it before the other
// claimed, and never after the pending login expired.
func TestClaimState(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store, _ := b.Open(t)
			f := &Federation{cfg: Config{Store: store}}
			now := time.Now().UTC().Truncate(time.Second)
			add := func(id string, expires time.Time) *storage.PendingLogin {
				p := &storage.PendingLogin{ID: id, BrowserBinding: "b", ClientID: "spa", Form: "a=b",
					RequestedAt: now, ExpiresAt: expires, ConnectorID: "okta",
					UpstreamStateHash: hashState("st-" + id), ConnectorState: []byte("cs")}
				if err := store.CreatePendingLogin(ctx, p); err != nil {
					t.Fatal(err)
				}
				return p
			}
			p := add("p1", now.Add(time.Minute))
			first, second := *p, *p // two callbacks read the same row
			if err := f.claimState(ctx, &first); err != nil {
				t.Fatalf("first claim: %v", err)
			}
			if err := f.claimState(ctx, &second); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("second claim: %v, want ErrNotFound", err)
			}
			got, err := store.GetPendingLogin(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			if got.UpstreamStateHash != "" || len(got.ConnectorState) != 0 || got.ConnectorID != "okta" {
				t.Errorf("after the claim: %+v", got)
			}
			// A newer /connect replaced the state: the old one is refused.
			p2 := add("p2", now.Add(time.Minute))
			stale := *p2
			p2.UpstreamStateHash = hashState("newer")
			if err := store.UpdatePendingLogin(ctx, p2); err != nil {
				t.Fatal(err)
			}
			if err := f.claimState(ctx, &stale); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("claim of a replaced state: %v", err)
			}
			expired := add("p3", now.Add(-time.Second))
			if err := f.claimState(ctx, expired); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("claim of an expired login: %v", err)
			}
		})
	}
}
