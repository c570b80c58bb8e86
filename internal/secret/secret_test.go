package secret

import (
	"bytes"
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
