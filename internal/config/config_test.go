package config

import (
	"os"
	"path/filepath"
	"regexp"
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

// Unknown keys are named by their path and line with the nearest valid key
// (or the section a top-level key belongs in, or the valid keys), never by
// Go type names; a connector's own config map is the plugin's to check.
func TestLoadNamesUnknownKeys(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"listn: 127.0.0.1:8080\n", `line 1: unknown key "listn"; did you mean "listen"?`},
		{"keys:\n  algoritm: ES256\n", `line 2: unknown key "keys.algoritm"; did you mean "keys.algorithm"?`},
		{"access_token_lifetime: 5m\n", `line 1: unknown key "access_token_lifetime"; did you mean "tokens.access_token_lifetime" (under "tokens")?`},
		{"accounts:\n  smtp:\n    hots: mail\n", `line 3: unknown key "accounts.smtp.hots"; did you mean "accounts.smtp.host"?`},
		{"metrics:\n  everything: true\n", `line 2: unknown key "metrics.everything"; valid keys here: listen, off`},
		{"connectors:\n  - id: a\n    path: /a\n  - id: b\n    trust_emial: true\n", `line 5: unknown key "connectors[1].trust_emial"; did you mean "connectors[1].trust_email"?`},
		{"base: &b\n  level: info\n  fromat: json\nlog:\n  <<: *b\n", `unknown key "base"`},
	} {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v; want %q", tc.yaml, err, tc.want)
		}
		if err != nil && goTypeName.MatchString(err.Error()) {
			t.Errorf("%q: Go type names in %v", tc.yaml, err)
		}
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("connectors:\n  - id: okta\n    path: /bin/true\n    config: {presett: okta, anything: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("a connector's config map was checked against the broker's keys: %v", err)
	}
}

var goTypeName = regexp.MustCompile(`config\.[A-Z]|not found in type`)

// dpop.nonce and dpop.proof_max_age are keys and flags; the window is
// bounded.
func TestDPoPConfig(t *testing.T) {
	if d := Default().DPoP; d.Nonce || d.ProofMaxAge != time.Minute {
		t.Errorf("default dpop %+v, want nonces off and a 1m proof age", d)
	}
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--dpop.nonce"}, true},
		{[]string{"--dpop.proof-max-age", "5m"}, true},
		{[]string{"--dpop.proof-max-age", "10m"}, false},
		{[]string{"--dpop.proof-max-age", "0"}, false},
	} {
		cfg := Default()
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		flags := BindFlags(fs, cfg)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		flags.Apply(&cfg)
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.args, err)
		}
		if tc.args[0] == "--dpop.nonce" && !cfg.DPoP.Nonce {
			t.Error("--dpop.nonce did not set dpop.nonce")
		}
	}
}
