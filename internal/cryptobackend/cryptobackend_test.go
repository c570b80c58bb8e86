package cryptobackend

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"os"
	"testing"
)

// The build says which implementation it has, and it signs and verifies.
// `make test-boring` sets BRIDGEKEEPER_TEST_CRYPTO=BoringCrypto: a build
// meant to use BoringSSL that silently fell back to Go fails here.
func TestName(t *testing.T) {
	name := Name()
	if name != Go && name != BoringCrypto {
		t.Fatalf("Name() = %q", name)
	}
	if want := os.Getenv("BRIDGEKEEPER_TEST_CRYPTO"); want != "" && name != want {
		t.Fatalf("crypto implementation %q, want %q", name, want)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("bridgekeeper"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("%s: own signature does not verify: %v", name, err)
	}
	digest[0] ^= 1
	if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig) == nil {
		t.Fatalf("%s: a signature verifies over another digest", name)
	}
}

// BenchmarkSignRS256 is one RS256 signature (RSA-2048, PKCS#1 v1.5,
// SHA-256) with this build's implementation: compare `go test -bench .`
// with `make bench-boring`.
func BenchmarkSignRS256(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("bridgekeeper"))
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
