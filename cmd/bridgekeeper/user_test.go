package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
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
