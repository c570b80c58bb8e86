package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Signer makes proofs with one private key: what a Go client (and the tests
// of the broker and rp/) send.
type Signer struct {
	key crypto.Signer
	alg jose.SignatureAlgorithm
	jwk *jose.JSONWebKey
	jkt string
}

// NewSigner returns a signer for key: a P-256 key signs ES256 (P-384
// ES384, P-521 ES512), an RSA key PS256, an Ed25519 key EdDSA.
func NewSigner(key crypto.Signer) (*Signer, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		case elliptic.P521():
			alg = jose.ES512
		default:
			return nil, fmt.Errorf("dpop: signer: ECDSA keys on P-256, P-384 or P-521 only")
		}
	case *rsa.PrivateKey:
		alg = jose.PS256
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("dpop: signer: unsupported key %T", key)
	}
	return NewSignerAlg(key, alg)
}

// NewSignerAlg is NewSigner with the alg given (RS256 with an RSA key, say).
func NewSignerAlg(key crypto.Signer, alg jose.SignatureAlgorithm) (*Signer, error) {
	jwk := &jose.JSONWebKey{Key: key.Public()}
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, err
	}
	return &Signer{key: key, alg: alg, jwk: jwk, jkt: jkt}, nil
}

// GenerateSigner returns a signer with a fresh P-256 key.
func GenerateSigner() (*Signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: generate key: %w", err)
	}
	return NewSigner(k)
}

// JKT is the thumbprint of the signer's public key.
func (s *Signer) JKT() string { return s.jkt }

// ProofOptions are the optional claims of a proof.
type ProofOptions struct {
	AccessToken string    // sets ath
	Nonce       string    // sets nonce
	IssuedAt    time.Time // zero means now
	JTI         string    // empty means 128 random bits
}

// Proof returns a proof for method and url.
func (s *Signer) Proof(method, url string, o ProofOptions) (string, error) {
	iat := o.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	jti := o.JTI
	if jti == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("dpop: jti: %w", err)
		}
		jti = base64.RawURLEncoding.EncodeToString(b[:])
	}
	claims := map[string]any{"jti": jti, "htm": method, "htu": url, "iat": iat.Unix()}
	if o.AccessToken != "" {
		claims["ath"] = AccessTokenHash(o.AccessToken)
	}
	if o.Nonce != "" {
		claims["nonce"] = o.Nonce
	}
	header := map[string]any{"typ": "dpop+jwt", "alg": string(s.alg), "jwk": s.jwk}
	return SignRaw(s.key, s.alg, header, claims)
}

// SignRaw signs any header and claims with key under alg, as given: the
// tests use it to build proofs a Signer never would.
func SignRaw(key crypto.Signer, alg jose.SignatureAlgorithm, header, claims any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("dpop: header: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("dpop: claims: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	switch alg {
	case jose.EdDSA:
		sig, err = key.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	case jose.ES256, jose.ES384, jose.ES512:
		h, size := sha256.New(), 32
		switch alg {
		case jose.ES384:
			h, size = sha512.New384(), 48
		case jose.ES512:
			h, size = sha512.New(), 66
		}
		h.Write([]byte(input))
		ek, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return "", fmt.Errorf("dpop: %s needs an ECDSA key", alg)
		}
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, ek, h.Sum(nil))
		if err == nil {
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	case jose.RS256:
		sum := sha256.Sum256([]byte(input))
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	case jose.PS256:
		sum := sha256.Sum256([]byte(input))
		sig, err = key.Sign(rand.Reader, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		return "", fmt.Errorf("dpop: SignRaw does not sign %s", alg)
	}
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
