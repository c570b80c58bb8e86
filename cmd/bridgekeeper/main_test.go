package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
)

// run executes the CLI in process and returns stdout, stderr and the error.
func run(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand(strings.NewReader(stdin), &out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		path := strings.Fields(c.CommandPath())[1:]
		out, _, err := run(t, "", append(path, "--help")...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%q --help: err=%v, output %q", c.CommandPath(), err, out)
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Usage == "" {
				t.Errorf("%s --%s has no help text", c.CommandPath(), f.Name)
			}
		})
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(newRootCommand(nil, &bytes.Buffer{}, &bytes.Buffer{}))
}

func TestClientCreateValidates(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--public", "--redirect-uri", "http://127.0.0.1:5173/cb"}, "--id is required"},
		{[]string{"--id", "x", "--public"}, "needs at least one --redirect-uri"},
		{[]string{"--id", "x", "--public", "--grant", "client_credentials"}, "cannot use client_credentials"},
		{[]string{"--id", "x", "--grant", "password", "--redirect-uri", "https://a.example/cb"}, `"password"`},
		{[]string{"--id", "x", "--public", "--redirect-uri", "http://app.example.com/cb"}, "use https"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "https://a.example/cb#frag"}, "fragment"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "http://evil@127.0.0.1:5173/cb"}, "userinfo"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "https://user:pw@a.example/cb"}, "userinfo"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "https://u@a.example/"}, "userinfo"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "http://127.evil.example/cb"}, "use https"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "javascript:alert(document.cookie)//"}, "scheme javascript: is not allowed"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "data:text/html,hi"}, "scheme data: is not allowed"},
		{[]string{"--id", "x", "--public", "--redirect-uri", "https://a.example/cb", "--allowed-origin", "https://a.example/path"}, "no path"},
	} {
		_, _, err := run(t, "", append([]string{"client", "create", "--dsn", dsn}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("client create %v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestClientAndUserLifecycle(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")

	out, _, err := run(t, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public",
		"--redirect-uri", "http://127.0.0.1:5173/callback", "--allowed-origin", "http://127.0.0.1:5173")
	if err != nil || !strings.Contains(out, `created client "spa" (public)`) {
		t.Fatalf("create public client: %v %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "bridgekeeper.secret")); err != nil {
		t.Fatalf("no system secret generated next to the database: %v", err)
	}
	if _, _, err := run(t, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public",
		"--redirect-uri", "http://127.0.0.1:5173/callback"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("duplicate client: %v", err)
	}
	out, _, err = run(t, "", "client", "create", "--dsn", dsn, "--id", "svc", "--grant", "client_credentials")
	if err != nil || !strings.Contains(out, "client_secret: ") {
		t.Fatalf("generated secret not shown: %v %q", err, out)
	}
	out, _, err = run(t, "", "client", "list", "--dsn", dsn)
	if err != nil || !strings.Contains(out, "spa") || !strings.Contains(out, "svc") {
		t.Fatalf("client list: %v %q", err, out)
	}
	out, _, err = run(t, "", "client", "get", "--dsn", dsn, "spa")
	if err != nil || !strings.Contains(out, `"token_endpoint_auth_method": "none"`) || !strings.Contains(out, `"offline_access"`) {
		t.Fatalf("client get: %v %q", err, out)
	}
	if _, _, err := run(t, "", "client", "delete", "--dsn", dsn, "svc"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "", "client", "get", "--dsn", dsn, "svc"); err == nil {
		t.Fatal("deleted client still found")
	}

	if _, _, err := run(t, "short\n", "user", "create", "--dsn", dsn, "--email", "ada@example.com", "--password-stdin"); err == nil {
		t.Fatal("a 5-character password was accepted")
	}
	out, _, err = run(t, "correct horse battery staple\n", "user", "create", "--dsn", dsn, "--email", "Ada@Example.com", "--password-stdin")
	if err != nil || !strings.Contains(out, "created user ada@example.com") {
		t.Fatalf("user create: %v %q", err, out)
	}
	if _, _, err := run(t, "another long password\n", "user", "create", "--dsn", dsn, "--email", "ada@example.com", "--password-stdin"); err == nil {
		t.Fatal("duplicate e-mail accepted")
	}
	for _, args := range [][]string{{"disable", "ada@example.com"}, {"enable", "ada@example.com"}} {
		if _, _, err := run(t, "", append([]string{"user"}, append(args[:1], "--dsn", dsn, args[1])...)...); err != nil {
			t.Fatalf("user %v: %v", args, err)
		}
	}
	out, _, err = run(t, "", "user", "list", "--dsn", dsn)
	if err != nil || !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "active") {
		t.Fatalf("user list: %v %q", err, out)
	}
	if _, _, err := run(t, "", "user", "delete", "--dsn", dsn, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
}

func TestKeyListAndRotate(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	before, _, err := run(t, "", "key", "list", "--dsn", dsn)
	if err != nil || !strings.Contains(before, "current") || !strings.Contains(before, "next") {
		t.Fatalf("key list: %v %q", err, before)
	}
	after, _, err := run(t, "", "key", "rotate", "--dsn", dsn)
	if err != nil || !strings.Contains(after, "retired") {
		t.Fatalf("key rotate: %v %q", err, after)
	}
}

func TestConfigFlagsAreDocumentedInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	config.BindFlags(fs, config.Default())
	fs.VisitAll(func(f *pflag.Flag) {
		if !bytes.Contains(readme, []byte("--"+f.Name)) {
			t.Errorf("README.md does not document --%s", f.Name)
		}
	})
}

// TestWarnsAboutExposedFiles: the database file and the generated secret
// file are created private (0600); when an existing one is readable by
// other users, every command that opens them warns at start, naming it.
func TestWarnsAboutExposedFiles(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	dir := t.TempDir()
	db, sec := filepath.Join(dir, "bk.db"), filepath.Join(dir, "bridgekeeper.secret")
	_, stderr, err := run(t, "", "key", "list", "--dsn", "sqlite:"+db)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{db, sec} { // (the log and index: storage TestSQLiteFilesArePrivate)
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v; want -rw-------", f, fi.Mode().Perm())
		}
	}
	if strings.Contains(stderr, "other users") {
		t.Errorf("warned about private files:\n%s", stderr)
	}
	for _, f := range []string{db, sec} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, err = run(t, "", "key", "list", "--dsn", "sqlite:"+db)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{db, sec} {
		if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "file="+f) {
			t.Errorf("no warning about %s (mode 0644):\n%s", f, stderr)
		}
	}
}

// The config's tokens.refresh_reuse_grace reaches the broker; its 0 (off)
// becomes the broker's negative (off), not the broker's zero (default).
func TestBrokerConfigRefreshReuseGrace(t *testing.T) {
	for value, want := range map[time.Duration]time.Duration{10 * time.Second: 10 * time.Second, 0: -1, time.Minute: time.Minute} {
		cfg := config.Default()
		cfg.Tokens.RefreshReuseGrace = value
		if got := brokerConfig(cfg, nil, nil, nil).RefreshReuseGrace; got != want {
			t.Errorf("tokens.refresh_reuse_grace %v: broker gets %v, want %v", value, got, want)
		}
	}
	if got := brokerConfig(config.Default(), nil, nil, nil).RefreshReuseGrace; got != broker.DefaultRefreshReuseGrace {
		t.Errorf("default: broker gets %v, want %v", got, broker.DefaultRefreshReuseGrace)
	}
}

// The config's dpop keys reach the broker.
func TestBrokerConfigDPoP(t *testing.T) {
	cfg := config.Default()
	cfg.DPoP.Nonce, cfg.DPoP.ProofMaxAge = true, 30*time.Second
	if got := brokerConfig(cfg, nil, nil, nil); !got.DPoPNonce || got.DPoPProofMaxAge != 30*time.Second {
		t.Errorf("dpop %+v: broker gets nonce %v, max age %v", cfg.DPoP, got.DPoPNonce, got.DPoPProofMaxAge)
	}
}
