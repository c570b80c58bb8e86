package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestExpandEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"HOST": "db.internal", "EMPTY": ""}[k]
		return v, ok
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "dsn: postgres://${HOST}/bk", want: "dsn: postgres://db.internal/bk"},
		{in: "x: ${MISSING:-fallback}", want: "x: fallback"},
		{in: "x: ${EMPTY:-fallback}", want: "x: fallback"},
		{in: "x: ${EMPTY}", want: "x: "},
		{in: "x: $$${HOST}", want: "x: $${HOST}"},
		{in: "hash: $argon2id$v=19", want: "hash: $argon2id$v=19"},
		{in: "x: ${MISSING}", err: "MISSING is not set"},
	} {
		got, err := ExpandEnv(tc.in, lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandEnv(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLoadFileThenFlags(t *testing.T) {
	t.Setenv("BK_TEST_ISSUER", "https://id.example.com")
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(`
issuer: ${BK_TEST_ISSUER}
tokens:
  access_token_lifetime: 5m
keys:
  algorithm: ES256
`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	flags := BindFlags(fs, Default())
	if err := fs.Parse([]string{"--listen", "127.0.0.1:9999", "--tokens.id-token-lifetime", "2h"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	flags.Apply(&cfg)
	if cfg.Issuer != "https://id.example.com" || cfg.Listen != "127.0.0.1:9999" ||
		cfg.Tokens.AccessTokenLifetime != 5*time.Minute || cfg.Tokens.IDTokenLifetime != 2*time.Hour ||
		cfg.Keys.Algorithm != "ES256" || cfg.Tokens.RefreshTokenLifetime != Default().Tokens.RefreshTokenLifetime {
		t.Fatalf("unexpected config: %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte("isuer: https://typo.example.com\n"), 0o600)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "isuer") {
		t.Fatalf("Load with a typo: err = %v, want one naming the key", err)
	}
}

func TestValidate(t *testing.T) {
	cfg := Default()
	cfg.Issuer = "http://id.example.com"
	cfg.Keys.Algorithm = "HS256"
	cfg.Connectors = []Connector{{ID: "okta", Path: "x"}, {ID: "okta", Path: "y"}, {ID: "local", Path: "z"}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"use https", "HS256", "used twice", "reserved"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestRefreshReuseGrace(t *testing.T) {
	if got := Default().Tokens.RefreshReuseGrace; got != 10*time.Second {
		t.Errorf("default tokens.refresh_reuse_grace %v, want 10s", got)
	}
	for _, tc := range []struct {
		value string
		ok    bool
	}{{"0", true}, {"10s", true}, {"5m", true}, {"6m", false}, {"-1s", false}} {
		cfg := Default()
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		flags := BindFlags(fs, cfg)
		if err := fs.Parse([]string{"--tokens.refresh-reuse-grace", tc.value}); err != nil {
			t.Fatal(err)
		}
		flags.Apply(&cfg)
		err := cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("tokens.refresh_reuse_grace %s: %v", tc.value, err)
		}
	}
}
