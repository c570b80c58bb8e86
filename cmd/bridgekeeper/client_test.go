package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientCreateNamesFlags: the registration rules are storage's
// (storage.PrepareClient); the CLI words each broken one with its flag,
// all of them at once, before it creates a database.
func TestClientCreateNamesFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "bk.db")
	dsn := "sqlite:" + db
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	_, _, err := run(t, "", "client", "create", "--dsn", dsn, "--id", "x", "--auth-method", "none",
		"--grant", "implicit", "--redirect-uri", "https://a.example/cb", "--scope", "openid profile",
		"--audience", "my api", "--allowed-origin", "https://a.example/p")
	if err == nil {
		t.Fatal("an invalid client was created")
	}
	for _, want := range []string{
		`--auth-method "none": use client_secret_basic or client_secret_post`,
		`--grant "implicit": supported grants are authorization_code, refresh_token, client_credentials`,
		`--scope "openid profile": a scope is one word`,
		`--audience "my api": an audience is one word`,
		`--allowed-origin "https://a.example/p": an origin is scheme://host[:port], with no path`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "storage:") {
		t.Errorf("error %q shows storage's wording, not the flags'", err)
	}
	if _, statErr := os.Stat(db); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("the refused registration created the database (%v)", statErr)
	}
}

// TestClientCreateWarnsAboutShortSecret: a secret given on standard input
// shorter than 32 characters (storage.CheckClientSecret) is accepted with
// a warning; a long one without.
func TestClientCreateWarnsAboutShortSecret(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	for id, sec := range map[string]string{"short": "only-twenty-chars-xx", "long": strings.Repeat("s", 32)} {
		_, stderr, err := run(t, sec+"\n", "client", "create", "--dsn", dsn, "--id", id, "--secret-stdin",
			"--grant", "client_credentials")
		if err != nil {
			t.Fatalf("%s secret: %v", id, err)
		}
		warned := strings.Contains(stderr, "warning: a client secret shorter than 32 characters can be guessed")
		if warned != (id == "short") {
			t.Errorf("%s secret: warned %v (stderr %q)", id, warned, stderr)
		}
	}
}
