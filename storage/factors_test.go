package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestSecondFactors: a factor counts only once confirmed, its counter
// only grows and of concurrent uses of one step exactly one wins, a
// recovery code works once (also concurrently), the last factor takes the
// recovery codes with it, and a login step is one pending login's.
func TestSecondFactors(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			add := func(id, user string) {
				t.Helper()
				if err := s.AddSecondFactor(ctx, &storage.SecondFactor{ID: id, UserID: user, Kind: storage.FactorTOTP, Name: "app", Secret: []byte{1, 2}}); err != nil {
					t.Fatal(err)
				}
			}
			add("f1", "u1")
			add("f2", "u1")
			if err := s.AdvanceFactorCounter(ctx, "f1", 5); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("an unconfirmed factor's counter moved: %v", err)
			}
			if err := s.ConfirmSecondFactor(ctx, "u2", "f1", 1); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("another user confirmed f1: %v", err)
			}
			if err := s.ConfirmSecondFactor(ctx, "u1", "f1", 10); err != nil {
				t.Fatal(err)
			}
			fs, err := s.ListSecondFactors(ctx, "u1")
			if err != nil || len(fs) != 1 || !fs[0].Confirmed || fs[0].Counter != 10 {
				t.Fatalf("after confirming f1 (f2 unconfirmed goes): %v %+v", err, fs)
			}
			if err := s.AdvanceFactorCounter(ctx, "f1", 10); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the confirming step again: %v", err)
			}
			if err := s.AdvanceFactorCounter(ctx, "f1", 9); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("an older step: %v", err)
			}
			var wins, losses int
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					err := s.AdvanceFactorCounter(ctx, "f1", 11)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, storage.ErrNotFound):
						losses++
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if wins != 1 || losses != 7 {
				t.Fatalf("concurrent uses of one step: %d won, %d lost", wins, losses)
			}

			if err := s.ReplaceRecoveryCodes(ctx, "u1", []string{"h1", "h2"}); err != nil {
				t.Fatal(err)
			}
			wins, losses = 0, 0
			for range 6 {
				wg.Go(func() {
					err := s.UseRecoveryCode(ctx, "u1", "h1")
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						wins++
					} else if errors.Is(err, storage.ErrNotFound) {
						losses++
					}
				})
			}
			wg.Wait()
			if wins != 1 || losses != 5 {
				t.Fatalf("concurrent uses of one recovery code: %d won, %d lost", wins, losses)
			}
			if err := s.UseRecoveryCode(ctx, "u2", "h2"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("another user's recovery code: %v", err)
			}
			if n, err := s.UnusedRecoveryCodes(ctx, "u1"); err != nil || n != 1 {
				t.Fatalf("unused codes: %d %v", n, err)
			}
			if err := s.DeleteSecondFactor(ctx, "u2", "f1"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("another user deleted f1: %v", err)
			}
			if err := s.DeleteSecondFactor(ctx, "u1", "f1"); err != nil {
				t.Fatal(err)
			}
			if n, _ := s.UnusedRecoveryCodes(ctx, "u1"); n != 0 {
				t.Fatalf("recovery codes outlived the last factor: %d", n)
			}

			st := &storage.LoginStep{LoginID: "l1", UserID: "u1", AMR: "pwd", ExpiresAt: time.Now().Add(time.Minute)}
			if err := s.PutLoginStep(ctx, st); err != nil {
				t.Fatal(err)
			}
			st.Enrol = true
			if err := s.PutLoginStep(ctx, st); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetLoginStep(ctx, "l1"); err != nil || got.UserID != "u1" || !got.Enrol {
				t.Fatalf("login step: %v %+v", err, got)
			}
			old := &storage.LoginStep{LoginID: "l2", UserID: "u1", AMR: "pwd", ExpiresAt: time.Now().Add(-time.Second)}
			if err := s.PutLoginStep(ctx, old); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetLoginStep(ctx, "l2"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("an expired login step: %v", err)
			}
		})
	}
}

// TestFirstRecoveryCodes: the first set of recovery codes is stored once:
// of concurrent first enrolments exactly one stores its set, a user with
// unused codes keeps them, and one whose codes are all used gets a new set.
func TestFirstRecoveryCodes(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			u := storagetest.CreateUser(t, s, "u_ada", "ada@example.com")
			if _, err := s.FirstRecoveryCodes(ctx, "u_nobody", []string{"h"}); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("codes of no user: %v", err)
			}
			var (
				mu   sync.Mutex
				wg   sync.WaitGroup
				wins []string
			)
			for i := range 8 {
				wg.Go(func() {
					set := []string{fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)}
					ok, err := s.FirstRecoveryCodes(ctx, u.ID, set)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins = append(wins, set[0])
					}
				})
			}
			wg.Wait()
			if len(wins) != 1 {
				t.Fatalf("%d concurrent first sets stored, want 1", len(wins))
			}
			if n, err := s.UnusedRecoveryCodes(ctx, u.ID); err != nil || n != 2 {
				t.Fatalf("%d unused codes (%v), want the winner's 2", n, err)
			}
			if err := s.UseRecoveryCode(ctx, u.ID, wins[0]); err != nil {
				t.Fatalf("the winning set's code: %v", err)
			}
			if ok, err := s.FirstRecoveryCodes(ctx, u.ID, []string{"c"}); err != nil || ok {
				t.Fatalf("a set replaced one with an unused code: %v %v", ok, err)
			}
			if err := s.UseRecoveryCode(ctx, u.ID, "b"+wins[0][1:]); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.FirstRecoveryCodes(ctx, u.ID, []string{"c"}); err != nil || !ok {
				t.Fatalf("no new set when every code is used: %v %v", ok, err)
			}
		})
	}
}
