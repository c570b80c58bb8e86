package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A DSN the broker cannot use is reported as such, naming the accepted
// forms, before anything else is tried: not as a missing system secret,
// and without creating a database, a secret or a directory.
func TestBadDSNIsReportedFirst(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	t.Setenv("BRIDGEKEEPER_DSN", "")
	for _, tc := range []struct{ dsn, want string }{
		{"mysql://bk@db.internal/bk", `unsupported database "mysql"`},
		{"data/bk.db", `did you mean "sqlite:data/bk.db"`},
		{"sqlite:", "needs a file path"},
		{"sqlite::memory:", "in-memory"},
		{"", "dsn is empty"},
	} {
		for _, cmd := range [][]string{
			{"serve", "--listen", "127.0.0.1:0"},
			{"key", "list"},
			{"client", "create", "--id", "spa", "--public", "--redirect-uri", "http://127.0.0.1:5173/cb"},
			{"migrate"},
		} {
			dir := t.TempDir()
			t.Chdir(dir)
			_, stderr, err := run(t, "", append(cmd, "--dsn", tc.dsn)...)
			if err == nil {
				t.Fatalf("%v --dsn %q: no error", cmd, tc.dsn)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "sqlite:PATH") || !strings.Contains(msg, "postgres://") {
				t.Errorf("%v --dsn %q: %q; want %q and the accepted forms (sqlite:PATH, postgres://…)", cmd, tc.dsn, msg, tc.want)
			}
			if strings.Contains(msg, "system secret") {
				t.Errorf("%v --dsn %q: blames the system secret: %q", cmd, tc.dsn, msg)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("%v --dsn %q: created %v before refusing the DSN", cmd, tc.dsn, entries[0].Name())
			}
			if stderr != "" {
				t.Errorf("%v --dsn %q: logged before refusing the DSN:\n%s", cmd, tc.dsn, stderr)
			}
		}
	}
}

// An unknown key in the configuration file is named by its path and line,
// with the nearest valid key, not as a Go type.
func TestUnknownConfigKeySuggestsTheNearest(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	dir := t.TempDir()
	t.Chdir(dir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(`isuer: http://127.0.0.1:8080
tokens:
  access_token_lifetme: 5m
connectors:
  - id: okta
    pth: /usr/lib/bridgekeeper/connector-oidc
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"serve"}, {"key", "list"}} {
		_, _, err := run(t, "", append(cmd, "--config", path)...)
		if err == nil {
			t.Fatalf("%v: unknown keys accepted", cmd)
		}
		msg := err.Error()
		for _, want := range []string{
			`line 1: unknown key "isuer"; did you mean "issuer"?`,
			`line 3: unknown key "tokens.access_token_lifetme"; did you mean "tokens.access_token_lifetime"?`,
			`line 6: unknown key "connectors[0].pth"; did you mean "connectors[0].path"?`,
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("%v: error lacks %q:\n%s", cmd, want, msg)
			}
		}
		for _, goType := range []string{"config.Config", "config.Tokens", "not found in type"} {
			if strings.Contains(msg, goType) {
				t.Errorf("%v: error shows Go type names (%q):\n%s", cmd, goType, msg)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%v: created files before refusing the configuration: %v", cmd, entries)
		}
	}
}

// A listen address in use is found before the database, the system secret
// and the signing keys are created.
func TestServePortInUseIsFoundFirst(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	for _, flag := range []string{"--listen", "--metrics.listen"} {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		dir := t.TempDir()
		args := []string{"serve", "--dsn", "sqlite:" + filepath.Join(dir, "db", "bk.db"), "--listen", "127.0.0.1:0"}
		args = append(args, flag, taken.Addr().String())
		_, stderr, err := run(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), taken.Addr().String()) {
			t.Fatalf("%s in use: err = %v", flag, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%s in use: created %s before finding it", flag, entries[0].Name())
		}
		if strings.Contains(stderr, "signing key") || strings.Contains(stderr, "system secret") {
			t.Errorf("%s in use: created keys or a secret before finding it:\n%s", flag, stderr)
		}
	}
}

// A connector path that is missing, not executable or a directory is
// reported as such, without go-plugin's "failed to exit gracefully"
// warning about a process that never ran.
func TestServeConnectorPathErrors(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	dir := t.TempDir()
	notExec := filepath.Join(dir, "connector-notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "connector-missing"), "no such file"},
		{notExec, "not executable (chmod +x"},
		{dir, "is a directory"},
		{"connector-nowhere-on-path", "not found in $PATH"},
	} {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(cfg, []byte("connectors:\n  - id: okta\n    path: "+tc.path+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, err := run(t, "", "serve", "--config", cfg, "--listen", "127.0.0.1:0",
			"--dsn", "sqlite:"+filepath.Join(t.TempDir(), "bk.db"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `connector "okta"`) {
			t.Errorf("path %s: err = %v; want %q", tc.path, err, tc.want)
		}
		if strings.Contains(stderr, "gracefully") {
			t.Errorf("path %s: misleading warning before the error:\n%s", tc.path, stderr)
		}
	}
}
