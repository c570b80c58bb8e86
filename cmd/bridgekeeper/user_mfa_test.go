package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail/mailtest"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// `user reset-mfa` removes a user's second factors and recovery codes (a
// user who lost every factor), and only that user's.
func TestUserResetMFA(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		if _, _, err := run(t, "correct horse battery staple\n", "user", "create", "--dsn", dsn, "--email", email, "--password-stdin"); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	store, err := storage.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		u, err := store.GetUserByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		ids[email] = u.ID
		f := &storage.SecondFactor{ID: "f-" + u.ID, UserID: u.ID, Kind: storage.FactorTOTP, Name: "app", Secret: []byte("sealed")}
		if err := store.AddSecondFactor(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := store.ConfirmSecondFactor(ctx, u.ID, f.ID, 1); err != nil {
			t.Fatal(err)
		}
		if err := store.ReplaceRecoveryCodes(ctx, u.ID, []string{"h1", "h2"}); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	smtp := mailtest.Start(t, mailtest.Options{})
	conf := filepath.Join(dir, "bk.yaml")
	yaml := fmt.Sprintf("accounts:\n  smtp:\n    host: %s\n    port: %d\n    tls: none\n", smtp.Host, smtp.Port)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "", "user", "reset-mfa", "--config", conf, "--dsn", dsn, "ada@example.com")
	if err != nil || !strings.Contains(out, "removed 1 second factor") {
		t.Fatalf("reset-mfa: %v %q", err, out)
	}
	// The owner is told.
	if m := smtp.Next(t); len(m.To) != 1 || m.To[0] != "ada@example.com" || !strings.Contains(m.Text, "Two-step verification was turned off") {
		t.Fatalf("notice: %v %s", m.To, m.Text)
	}
	store, err = storage.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for email, want := range map[string]int{"ada@example.com": 0, "bob@example.com": 1} {
		fs, err := store.ListSecondFactors(ctx, ids[email])
		if err != nil || len(fs) != want {
			t.Errorf("%s: %d factors (%v), want %d", email, len(fs), err, want)
		}
		n, err := store.UnusedRecoveryCodes(ctx, ids[email])
		if err != nil || (n == 0) != (want == 0) {
			t.Errorf("%s: %d recovery codes (%v)", email, n, err)
		}
	}
}
