package mfa_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// meetingStore holds every caller of UnusedRecoveryCodes at a meeting:
// concurrent first enrolments that check for codes and then write them
// all see "none" before any writes, the worst interleaving, every run.
type meetingStore struct {
	*storage.Store
	meet *storagetest.Meeting
}

func (m meetingStore) UnusedRecoveryCodes(ctx context.Context, userID string) (int, error) {
	m.meet.Arrive()
	return m.Store.UnusedRecoveryCodes(ctx, userID)
}

// TestFirstRecoveryCodesConcurrent: of concurrent first enrolments of one
// user (two tabs confirming an app and adding a passkey at once) exactly
// one makes a set of recovery codes; the others get none (their pages say
// the codes still work), and the set shown keeps working. It failed
// before FirstRecoveryCodes was one locked check-and-insert in storage:
// every enrolment made a set and each replaced the one before.
func TestFirstRecoveryCodesConcurrent(t *testing.T) {
	sec, err := secret.Parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			u := storagetest.CreateUser(t, s, "u_ada", "ada@example.com")
			f := &storage.SecondFactor{ID: "f_key", UserID: u.ID, Kind: storage.FactorPasskey, Name: "Laptop", CredentialID: "cred", Confirmed: true}
			if err := s.AddSecondFactor(ctx, f); err != nil {
				t.Fatal(err)
			}
			const tabs = 4
			meet := storagetest.NewMeeting(tabs)
			svc, err := mfa.New(mfa.Config{Store: meetingStore{s, meet}, Secret: sec})
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu   sync.Mutex
				wg   sync.WaitGroup
				sets [][]string
			)
			for range tabs {
				wg.Go(func() {
					codes, err := svc.FirstRecoveryCodes(ctx, u.ID)
					meet.Leave()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Error(err)
					}
					if codes != nil {
						sets = append(sets, codes)
					}
				})
			}
			wg.Wait()
			if len(sets) != 1 {
				t.Fatalf("%d concurrent first enrolments made %d sets of recovery codes, want 1", tabs, len(sets))
			}
			if n, err := s.UnusedRecoveryCodes(ctx, u.ID); err != nil || n != mfa.RecoveryNum {
				t.Fatalf("%d unused recovery codes stored (%v), want %d", n, err, mfa.RecoveryNum)
			}
			for _, c := range sets[0] {
				if _, err := svc.Verify(ctx, u, c); err != nil {
					t.Fatalf("recovery code %s of the set shown: %v", c, err)
				}
			}
		})
	}
}
