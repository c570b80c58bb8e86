package jwsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestVerify signs with go-jose, for every algorithm, and checks that
// Verify accepts exactly the signature of the input with its own key and
// algorithm.
func TestVerify(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{
		{jose.RS256, rsaKey}, {jose.RS384, rsaKey}, {jose.RS512, rsaKey},
		{jose.PS256, rsaKey}, {jose.PS384, rsaKey}, {jose.PS512, rsaKey},
		{jose.ES256, p256}, {jose.ES384, p384}, {jose.ES512, p521}, {jose.EdDSA, edKey},
	}
	for _, tc := range cases {
		t.Run(string(tc.alg), func(t *testing.T) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tc.alg, Key: tc.key}, nil)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign([]byte(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			compact, _ := jws.CompactSerialize()
			parsed, _ := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{tc.alg})
			sig := parsed.Signatures[0].Signature
			input := compact[:strings.LastIndexByte(compact, '.')]
			if err := Verify(tc.alg, tc.key.Public(), input, sig); err != nil {
				t.Fatalf("a good signature: %v", err)
			}
			if Verify(tc.alg, tc.key.Public(), input+"x", sig) == nil {
				t.Error("another input accepted")
			}
			if Verify(tc.alg, other.Public(), input, sig) == nil {
				t.Error("another key accepted")
			}
			if Verify(jose.HS256, tc.key.Public(), input, sig) == nil || Verify("none", tc.key.Public(), input, nil) == nil {
				t.Error("HS256 or none accepted")
			}
			if Verify(tc.alg, tc.key.Public(), input, sig[:len(sig)-1]) == nil {
				t.Error("a truncated signature accepted")
			}
		})
	}
	if _, ok := Hash(jose.HS256); ok {
		t.Error("Hash(HS256) is ok")
	}
}
