package oidc

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

func TestSum256(t *testing.T) {
	// FIPS 180-4 examples.
	for in, want := range map[string]string{
		"":    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"abc": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq": "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
	} {
		if got := sum256([]byte(in)); hex.EncodeToString(got[:]) != want {
			t.Errorf("sum256(%q) = %x, want %s", in, got, want)
		}
	}
	// Every length around the block and padding boundaries, random content.
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := sum256(b), sha256.Sum256(b); got != want {
			t.Fatalf("len %d: sum256 = %x, crypto/sha256 = %x", n, got, want)
		}
	}
}

func TestEqualConstantTime(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"nonce", "nonce", true},
		{"nonce", "noncf", false},
		{"nonce", "nonc", false},
		{"", "x", false},
	} {
		if got := equalConstantTime(c.a, c.b); got != c.want {
			t.Errorf("equalConstantTime(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
