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

// A security change of a user ends the user's outstanding action tokens in
// the same transaction, and redeeming a token is serialised with it: a
// link used concurrently with a password change either lands before the
// change or fails — never after it.
func TestSecurityChangeEndsActionTokens(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			now := time.Now().UTC()
			token := func(id, kind, user, data string) {
				t.Helper()
				if err := s.CreateActionToken(ctx, &storage.ActionToken{ID: id, Kind: kind, UserID: user, Data: data,
					CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"u1", "u2"} {
				if err := s.CreateUser(ctx, &storage.User{ID: id, Email: id + "@example.com", PasswordHash: "old", Active: true}); err != nil {
					t.Fatal(err)
				}
			}
			token("reset-1", "reset", "u1", "u1@example.com")
			token("change-1", "email_change", "u1", "evil@example.com")
			token("reset-2", "reset", "u2", "u2@example.com")

			// A failing apply writes nothing and leaves the token usable.
			boom := errors.New("boom")
			if _, _, err := s.RedeemActionToken(ctx, "change-1", "email_change", now, func(t *storage.ActionToken, u *storage.User) (bool, error) {
				u.Email = t.Data
				return true, boom
			}); !errors.Is(err, boom) {
				t.Fatalf("failing apply: %v", err)
			}
			if _, err := s.GetActionToken(ctx, "change-1", "email_change", now); err != nil {
				t.Fatalf("token after a failing apply: %v", err)
			}

			u, err := s.ChangeUserSecurity(ctx, "u1", func(u *storage.User) error { u.PasswordHash = "new"; return nil })
			if err != nil || u.PasswordHash != "new" {
				t.Fatalf("ChangeUserSecurity: %+v, %v", u, err)
			}
			for _, id := range []string{"reset-1", "change-1"} {
				if _, _, err := s.RedeemActionToken(ctx, id, map[string]string{"reset-1": "reset", "change-1": "email_change"}[id], now,
					func(*storage.ActionToken, *storage.User) (bool, error) { return false, nil }); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("%s after the change: %v, want ErrNotFound", id, err)
				}
			}
			if _, err := s.GetActionToken(ctx, "reset-2", "reset", now); err != nil {
				t.Errorf("another user's token ended: %v", err)
			}
			if _, err := s.ChangeUserSecurity(ctx, "nobody", func(*storage.User) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("unknown user: %v", err)
			}

			// Races: an e-mail-change link against a password change.
			for i := range 10 {
				change := fmt.Sprintf("race-%d", i)
				token(change, "email_change", "u1", fmt.Sprintf("race%d@example.com", i))
				before, err := s.GetUser(ctx, "u1")
				if err != nil {
					t.Fatal(err)
				}
				pw := fmt.Sprintf("pw-%d", i)
				var wg sync.WaitGroup
				var redeemErr, changeErr error
				var changedAfter bool
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, _, redeemErr = s.RedeemActionToken(ctx, change, "email_change", now, func(t *storage.ActionToken, u *storage.User) (bool, error) {
						if u.PasswordHash != before.PasswordHash {
							changedAfter = true // the password changed first: this must not happen
						}
						u.Email = t.Data
						return true, nil
					})
				}()
				go func() {
					defer wg.Done()
					_, changeErr = s.ChangeUserSecurity(ctx, "u1", func(u *storage.User) error { u.PasswordHash = pw; return nil })
				}()
				wg.Wait()
				if changeErr != nil {
					t.Fatalf("race %d: password change: %v", i, changeErr)
				}
				if changedAfter {
					t.Fatalf("race %d: the link was applied after the password change", i)
				}
				if redeemErr != nil && !errors.Is(redeemErr, storage.ErrNotFound) {
					t.Fatalf("race %d: redeem: %v", i, redeemErr)
				}
				after, err := s.GetUser(ctx, "u1")
				if err != nil {
					t.Fatal(err)
				}
				if after.PasswordHash != pw {
					t.Fatalf("race %d: the password change was lost: %q", i, after.PasswordHash)
				}
			}
		})
	}
}
