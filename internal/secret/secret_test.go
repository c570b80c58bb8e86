package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadGeneratesOnceNextToSQLite(t *testing.T) {
	t.Setenv(EnvVar, "")
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "db", "bk.db")
	first, err := Load("", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Generated || first.Path != filepath.Join(dir, "db", FileName) {
		t.Fatalf("first Load: generated=%v path=%q", first.Generated, first.Path)
	}
	if fi, err := os.Stat(first.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, mode %v", err, fi.Mode())
	}
	second, err := Load("", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if second.Generated {
		t.Fatal("second Load generated a new secret")
	}
	if !bytes.Equal(first.Derive(PurposeCookie), second.Derive(PurposeCookie)) {
		t.Fatal("the same secret file derived different keys")
	}
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	s, err := Parse("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Derive(PurposeTokenHMAC), s.Derive(PurposeKeyEncryption)
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Fatalf("derived keys: %x %x", a, b)
	}
}

func TestLoadNeedsSecretForPostgres(t *testing.T) {
	t.Setenv(EnvVar, "")
	if _, err := Load("", "postgres://db/bk"); err == nil {
		t.Fatal("Load invented a secret for Postgres")
	}
	t.Setenv(EnvVar, "short")
	if _, err := Load("", "postgres://db/bk"); err == nil {
		t.Fatal("Load accepted a short secret")
	}
	t.Setenv(EnvVar, "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==")
	if _, err := Load("", "postgres://db/bk"); err != nil {
		t.Fatalf("Load with a base64 secret: %v", err)
	}
}

// TestSealOpen: what Seal encrypts opens only with the same key and
// associated data, and not after a change.
func TestSealOpen(t *testing.T) {
	s, err := Parse("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	key, other := s.Derive(PurposeConnectorData), s.Derive(PurposeKeyEncryption)
	sealed, err := Seal(key, []byte("refresh-token"), []byte("okta\x00s1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("refresh-token")) {
		t.Fatal("sealed value holds the plaintext")
	}
	if got, err := Open(key, sealed, []byte("okta\x00s1")); err != nil || string(got) != "refresh-token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string]struct {
		key, sealed, ad []byte
	}{
		"other key": {other, sealed, []byte("okta\x00s1")},
		"other ad":  {key, sealed, []byte("okta\x00s2")},
		"tampered":  {key, tampered, []byte("okta\x00s1")},
		"short":     {key, sealed[:10], []byte("okta\x00s1")},
	} {
		if _, err := Open(c.key, c.sealed, c.ad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
}
