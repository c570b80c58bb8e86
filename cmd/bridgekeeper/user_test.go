package main

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// `user set-password` is a security change like a reset: the reset and
// e-mail-change links mailed before it stop working.
func TestUserSetPasswordEndsOutstandingLinks(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	if _, _, err := run(t, "correct horse battery staple\n", "user", "create", "--dsn", dsn, "--email", "ada@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := storage.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.GetUserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, tok := range []storage.ActionToken{
		{ID: "reset-link", Kind: "reset", UserID: u.ID, Data: u.Email},
		{ID: "change-link", Kind: "email_change", UserID: u.ID, Data: "attacker@example.com"},
	} {
		tok.CreatedAt, tok.ExpiresAt = now, now.Add(time.Hour)
		if err := store.CreateActionToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	out, _, err := run(t, "a new and rather long password\n", "user", "set-password", "--dsn", dsn, "ada@example.com")
	if err != nil || !strings.Contains(out, "password set") {
		t.Fatalf("set-password: %v %q", err, out)
	}
	store, err = storage.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for id, kind := range map[string]string{"reset-link": "reset", "change-link": "email_change"} {
		if _, err := store.GetActionToken(ctx, id, kind, now); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s after set-password: %v, want ErrNotFound", id, err)
		}
	}
}

// TestUserDisableRacingPasswordChange: `user disable` reads the user, then
// writes. A password change that commits in between is kept, and the
// user is disabled (it was lost: the disable wrote back the whole row it
// had read, old password hash included). The password change holds the
// user's row lock while the command runs, so the command's write waits
// for it: Postgres only, since SQLite's single writer makes the command's
// migration wait too (federation TestProfileSyncRacingDisable races on
// both backends).
func TestUserDisableRacingPasswordChange(t *testing.T) {
	b := storagetest.Backends(t)[len(storagetest.Backends(t))-1]
	if b.Name != storage.DialectPostgres {
		t.Skipf("needs Postgres ($%s)", storagetest.PostgresEnv)
	}
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	ctx := context.Background()
	store, dsn := b.Open(t)
	id := "u_race_" + rand.Text()
	if err := store.CreateUser(ctx, &storage.User{ID: id, Email: "race@example.com", PasswordHash: "old", Active: true}); err != nil {
		t.Fatal(err)
	}
	disabled := make(chan error, 1)
	_, err := store.ChangeUserSecurity(ctx, id, func(u *storage.User) error {
		u.PasswordHash = "new"
		go func() {
			_, _, err := run(t, "", "user", "disable", "--dsn", dsn, id)
			disabled <- err
		}()
		waitForLockWaiter(t, store, id, disabled)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-disabled; err != nil {
		t.Fatalf("user disable: %v", err)
	}
	u, err := store.GetUser(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled || u.PasswordHash != "new" {
		t.Errorf("after a disable racing a password change: disabled %v, password hash %q; want disabled with %q", u.Disabled, u.PasswordHash, "new")
	}
}

// waitForLockWaiter waits until a Postgres session waits for a lock in a
// statement naming id (the command's write of the user), or until the
// command ends (done is then refilled for the caller).
func waitForLockWaiter(t *testing.T, store *storage.Store, id string, done chan error) {
	for storagetest.LockWaiters(t, store, id) == 0 {
		select {
		case err := <-done:
			done <- err
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
