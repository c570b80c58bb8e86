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

// A WebAuthn ceremony is taken once (of eight concurrent takes exactly
// one wins), only by the browser and for the purpose it was begun with
// (a wrong binding leaves it for its own browser), and not once expired.
// A passkey's sign counter only moves forward (a counter kept at 0 is
// accepted), and of eight uses with the same counter one wins; a credential
// id is unique among all users.
func TestPasskeyStorage(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			put := func(id string, exp time.Duration) {
				t.Helper()
				if err := s.PutWebAuthnCeremony(ctx, &storage.WebAuthnCeremony{ID: id, Binding: "b1", Purpose: "login", Data: []byte("{}"), ExpiresAt: time.Now().Add(exp)}); err != nil {
					t.Fatal(err)
				}
			}
			put("c1", time.Minute)
			if _, err := s.TakeWebAuthnCeremony(ctx, "c1", "b2", "login"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("another browser took it: %v", err)
			}
			if _, err := s.TakeWebAuthnCeremony(ctx, "c1", "b1", "register"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("taken for another purpose: %v", err)
			}
			var wins atomic.Int32
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if _, err := s.TakeWebAuthnCeremony(ctx, "c1", "b1", "login"); err == nil {
						wins.Add(1)
					} else if !errors.Is(err, storage.ErrNotFound) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d takes won, want 1", wins.Load())
			}
			put("c2", -time.Second)
			if _, err := s.TakeWebAuthnCeremony(ctx, "c2", "b1", "login"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("an expired ceremony was taken: %v", err)
			}

			add := func(id, user, cred string, counter int64) error {
				return s.AddSecondFactor(ctx, &storage.SecondFactor{ID: id, UserID: user, Kind: storage.FactorPasskey, Name: "key",
					PublicData: []byte("{}"), CredentialID: cred, Counter: counter, Confirmed: true})
			}
			if err := add("p1", "u1", "cred-1", 0); err != nil {
				t.Fatal(err)
			}
			if err := add("p2", "u2", "cred-1", 0); !errors.Is(err, storage.ErrConflict) {
				t.Fatalf("the same credential for another user: %v", err)
			}
			if f, err := s.PasskeyByCredentialID(ctx, "cred-1"); err != nil || f.ID != "p1" {
				t.Fatalf("by credential id: %v %+v", err, f)
			}
			if err := s.UsePasskey(ctx, "p1", 0, []byte("{}")); err != nil {
				t.Fatalf("a counter kept at 0: %v", err)
			}
			if err := s.UsePasskey(ctx, "p1", 5, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			for _, c := range []int64{5, 4, 0} {
				if err := s.UsePasskey(ctx, "p1", c, []byte("{}")); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("counter %d after 5: %v", c, err)
				}
			}
			wins.Store(0)
			for range 8 {
				wg.Go(func() {
					if err := s.UsePasskey(ctx, "p1", 6, []byte("{}")); err == nil {
						wins.Add(1)
					} else if !errors.Is(err, storage.ErrNotFound) {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d uses with counter 6 won, want 1", wins.Load())
			}
		})
	}
}
