package password

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/ory/fosite"
)

var _ fosite.Hasher = ClientSecretHasher{}

func testHasher() ClientSecretHasher {
	return ClientSecretHasher{Key: bytes.Repeat([]byte{7}, 32)}
}

func TestClientSecretHashCompare(t *testing.T) {
	ctx := context.Background()
	h := testHasher()
	secret, err := GenerateClientSecret()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(ctx, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(hash, []byte("$hmac-sha256-v1$")) {
		t.Fatalf("hash %q lacks the version prefix", hash)
	}
	if bytes.Contains(hash, []byte(secret)) {
		t.Fatal("hash contains the secret")
	}
	if err := h.Compare(ctx, hash, []byte(secret)); err != nil {
		t.Fatalf("Compare(right) = %v", err)
	}
	if err := h.Compare(ctx, hash, []byte(secret+"x")); !errors.Is(err, ErrSecretMismatch) {
		t.Fatalf("Compare(wrong) = %v, want ErrSecretMismatch", err)
	}
	other := ClientSecretHasher{Key: bytes.Repeat([]byte{8}, 32)}
	if err := other.Compare(ctx, hash, []byte(secret)); !errors.Is(err, ErrSecretMismatch) {
		t.Fatalf("Compare under another key = %v, want ErrSecretMismatch", err)
	}
	again, _ := h.Hash(ctx, []byte(secret))
	if !bytes.Equal(hash, again) {
		t.Fatal("hash is not deterministic")
	}
}

func TestClientSecretCompareMalformed(t *testing.T) {
	ctx := context.Background()
	h := testHasher()
	good, _ := h.Hash(ctx, []byte("s"))
	mac := strings.TrimPrefix(string(good), "$hmac-sha256-v1$")
	for name, hash := range map[string]string{
		"empty":      "",
		"bcrypt":     "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"no prefix":  mac,
		"v2":         "$hmac-sha256-v2$" + mac,
		"truncated":  "$hmac-sha256-v1$" + mac[:20],
		"too long":   "$hmac-sha256-v1$" + mac + mac,
		"one longer": "$hmac-sha256-v1$" + mac + "A",
		"std b64":    "$hmac-sha256-v1$" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
	} {
		if err := h.Compare(ctx, []byte(hash), []byte("s")); !errors.Is(err, ErrUnknownSecretHash) {
			t.Errorf("%s: Compare = %v, want ErrUnknownSecretHash", name, err)
		}
	}
}

func TestClientSecretHasherNeedsKey(t *testing.T) {
	ctx := context.Background()
	var h ClientSecretHasher
	if _, err := h.Hash(ctx, []byte("s")); !errors.Is(err, ErrNoHasherKey) {
		t.Fatalf("Hash without key = %v", err)
	}
	good, _ := testHasher().Hash(ctx, []byte("s"))
	if err := h.Compare(ctx, good, []byte("s")); !errors.Is(err, ErrNoHasherKey) {
		t.Fatalf("Compare without key = %v", err)
	}
}

func TestGenerateClientSecret(t *testing.T) {
	a, err := GenerateClientSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateClientSecret()
	if a == b {
		t.Fatal("two secrets are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 || len(a) != 43 {
		t.Fatalf("secret %q: %d bytes, err %v", a, len(raw), err)
	}
}

func BenchmarkClientSecretCompare(b *testing.B) {
	ctx := context.Background()
	h := testHasher()
	secret, _ := GenerateClientSecret()
	hash, _ := h.Hash(ctx, []byte(secret))
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Compare(ctx, hash, []byte(secret)); err != nil {
			b.Fatal(err)
		}
	}
}
