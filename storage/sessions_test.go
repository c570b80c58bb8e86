package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestUpstreamState: the state a /connect records is this browser's, and
// its claim by the callback is single-use, for the right connector and
// state only, and never after the pending login expired.
func TestUpstreamState(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			now := time.Now().UTC().Truncate(time.Second)
			add := func(id string, expires time.Time) {
				t.Helper()
				p := &storage.PendingLogin{ID: id, BrowserBinding: "b", ClientID: "spa", Form: "a=b",
					RequestedAt: now, ExpiresAt: expires}
				if err := s.CreatePendingLogin(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			add("p1", now.Add(time.Minute))
			for _, binding := range []string{"other", ""} {
				if err := s.RecordUpstreamState(ctx, "p1", binding, "okta", "h1", []byte("cs")); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("record with binding %q: %v, want ErrNotFound", binding, err)
				}
			}
			if err := s.RecordUpstreamState(ctx, "missing", "b", "okta", "h1", []byte("cs")); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("record for a missing login: %v, want ErrNotFound", err)
			}
			if err := s.RecordUpstreamState(ctx, "p1", "b", "okta", "h1", []byte("opaque\x00state")); err != nil {
				t.Fatalf("record: %v", err)
			}
			got, err := s.GetPendingLogin(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			if got.ConnectorID != "okta" || got.UpstreamStateHash != "h1" || string(got.ConnectorState) != "opaque\x00state" ||
				got.Form != "a=b" || got.ClientID != "spa" || got.BrowserBinding != "b" {
				t.Errorf("after recording: %+v", got)
			}

			for _, c := range []struct{ binding, connector, hash string }{
				{"other", "okta", "h1"}, {"", "okta", "h1"}, {"b", "google", "h1"}, {"b", "okta", "h2"}, {"b", "okta", ""},
			} {
				if _, err := s.ClaimUpstreamState(ctx, "p1", c.binding, c.connector, c.hash); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("claim %+v: %v, want ErrNotFound", c, err)
				}
			}
			claimed, err := s.ClaimUpstreamState(ctx, "p1", "b", "okta", "h1")
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
			if claimed.ID != "p1" || claimed.Form != "a=b" || claimed.ConnectorID != "okta" ||
				string(claimed.ConnectorState) != "opaque\x00state" || !claimed.ExpiresAt.Equal(now.Add(time.Minute)) {
				t.Errorf("claimed: %+v", claimed)
			}
			if _, err := s.ClaimUpstreamState(ctx, "p1", "b", "okta", "h1"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("second claim: %v, want ErrNotFound", err)
			}
			if got, err := s.GetPendingLogin(ctx, "p1"); err != nil || got.UpstreamStateHash != "" {
				t.Errorf("after the claim: %+v, %v", got, err)
			}

			// A newer /connect replaced the state: the old one is refused.
			add("p2", now.Add(time.Minute))
			if err := s.RecordUpstreamState(ctx, "p2", "b", "okta", "old", nil); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordUpstreamState(ctx, "p2", "b", "okta", "newer", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClaimUpstreamState(ctx, "p2", "b", "okta", "old"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("claim of a replaced state: %v", err)
			}

			add("p3", now.Add(-time.Second))
			if err := s.RecordUpstreamState(ctx, "p3", "b", "okta", "h3", nil); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("record on an expired login: %v", err)
			}
			expired := &storage.PendingLogin{ID: "p4", BrowserBinding: "b", ClientID: "spa", Form: "a=b", RequestedAt: now,
				ExpiresAt: now.Add(-time.Second), ConnectorID: "okta", UpstreamStateHash: "h4"}
			if err := s.CreatePendingLogin(ctx, expired); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClaimUpstreamState(ctx, "p4", "b", "okta", "h4"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("claim on an expired login: %v", err)
			}
		})
	}
}

// TestClaimUpstreamStateConcurrently: of callbacks racing with the same
// state exactly one gets the pending login.
func TestClaimUpstreamStateConcurrently(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			now := time.Now().UTC().Truncate(time.Second)
			p := &storage.PendingLogin{ID: "p", BrowserBinding: "b", ClientID: "spa", Form: "a=b", RequestedAt: now,
				ExpiresAt: now.Add(time.Minute), ConnectorID: "okta", UpstreamStateHash: "h"}
			if err := s.CreatePendingLogin(ctx, p); err != nil {
				t.Fatal(err)
			}
			const n = 8
			errs := make(chan error, n)
			for range n {
				go func() {
					_, err := s.ClaimUpstreamState(ctx, "p", "b", "okta", "h")
					errs <- err
				}()
			}
			won := 0
			for range n {
				switch err := <-errs; {
				case err == nil:
					won++
				case !errors.Is(err, storage.ErrNotFound):
					t.Errorf("claim: %v", err)
				}
			}
			if won != 1 {
				t.Errorf("%d claims got the pending login, want 1", won)
			}
		})
	}
}

// TestTakeBoundPendingLogin: only the browser that started a pending login
// takes it; another browser's attempt leaves it in place.
func TestTakeBoundPendingLogin(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			createBoundPendingLogins(t, s)
			for _, binding := range []string{"other", ""} {
				if _, err := s.TakeBoundPendingLogin(ctx, "p", binding); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("take with binding %q: %v, want ErrNotFound", binding, err)
				}
			}
			taken, err := s.TakeBoundPendingLogin(ctx, "p", "b")
			if err != nil || taken.ID != "p" || taken.Form != "a=b" {
				t.Fatalf("take = %+v, %v", taken, err)
			}
			if _, err := s.TakeBoundPendingLogin(ctx, "p", "b"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("second take: %v, want ErrNotFound", err)
			}
			if _, err := s.TakeBoundPendingLogin(ctx, "old", "b"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("take of an expired login: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestUsePendingLogin: only the browser that started a pending login uses
// it up, once, before it expires.
func TestUsePendingLogin(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			createBoundPendingLogins(t, s)
			for _, binding := range []string{"other", ""} {
				if err := s.UsePendingLogin(ctx, "p", binding); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("use with binding %q: %v, want ErrNotFound", binding, err)
				}
			}
			if _, err := s.GetPendingLogin(ctx, "p"); err != nil {
				t.Fatalf("another browser's attempt removed the pending login: %v", err)
			}
			if err := s.UsePendingLogin(ctx, "p", "b"); err != nil {
				t.Fatalf("use: %v", err)
			}
			if _, err := s.GetPendingLogin(ctx, "p"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("a used pending login can still be read: %v", err)
			}
			if err := s.UsePendingLogin(ctx, "p", "b"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("second use: %v, want ErrNotFound", err)
			}
			if err := s.UsePendingLogin(ctx, "old", "b"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("use of an expired login: %v, want ErrNotFound", err)
			}
		})
	}
}

// createBoundPendingLogins stores two pending logins of the browser binding
// "b": "p", which lasts a minute, and "old", which has expired.
func createBoundPendingLogins(t *testing.T, s *storage.Store) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	for _, p := range []*storage.PendingLogin{
		{ID: "p", BrowserBinding: "b", ClientID: "spa", Form: "a=b", RequestedAt: now, ExpiresAt: now.Add(time.Minute)},
		{ID: "old", BrowserBinding: "b", ClientID: "spa", Form: "a=b", RequestedAt: now, ExpiresAt: now.Add(-time.Second)},
	} {
		if err := s.CreatePendingLogin(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIdentityBrowserSessions: a browser session keeps the upstream
// identity it came from and its last upstream check, and ending an
// identity deletes that identity's sessions only (and those recorded
// without a subject), not the user's local or other identities' ones.
func TestIdentityBrowserSessions(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			now := time.Now().UTC().Truncate(time.Second)
			add := func(id, user, idp, sub string) {
				t.Helper()
				bs := &storage.BrowserSession{ID: id, UserID: user, AuthTime: now.Add(-time.Hour), IDP: idp, IDPSubject: sub,
					AMR: []string{"fed"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), AuthTimeUnknown: sub == "s2"}
				if err := s.CreateBrowserSession(ctx, bs); err != nil {
					t.Fatal(err)
				}
			}
			add("a", "u1", "okta", "s1")
			add("b", "u1", "okta", "s2")
			add("c", "u1", "okta", "") // written before the subject was recorded
			add("d", "u1", "local", "")
			add("e", "u2", "okta", "s1")

			got, err := s.GetBrowserSession(ctx, "b")
			if err != nil {
				t.Fatal(err)
			}
			if got.IDPSubject != "s2" || !got.AuthTimeUnknown || got.CheckedAt != nil || !got.LastChecked().Equal(now) {
				t.Errorf("stored session: %+v", got)
			}
			if err := s.MarkBrowserSessionChecked(ctx, "b", now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if got, err = s.GetBrowserSession(ctx, "b"); err != nil || !got.LastChecked().Equal(now.Add(time.Minute)) {
				t.Errorf("after the check: %+v, %v", got, err)
			}
			if err := s.MarkBrowserSessionChecked(ctx, "gone", now); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("check of a missing session: %v, want ErrNotFound", err)
			}

			if err := s.DeleteIdentityBrowserSessions(ctx, "u1", "okta", "s1"); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]bool{"a": false, "b": true, "c": false, "d": true, "e": true} {
				_, err := s.GetBrowserSession(ctx, id)
				if have := err == nil; have != want {
					t.Errorf("session %s kept = %v, want %v (%v)", id, have, want, err)
				}
			}
			if err := s.DeleteIdentityBrowserSessions(ctx, "u1", "okta", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetBrowserSession(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("every okta session of u1 ended, b: %v", err)
			}
			if _, err := s.GetBrowserSession(ctx, "d"); err != nil {
				t.Errorf("the local session went too: %v", err)
			}
		})
	}
}
