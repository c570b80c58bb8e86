package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// A client signs every proof with the same key, so its proofs share one
// protected header (typ, alg, jwk) byte for byte. Verify checks a header
// once — decoding, alg, public key, RFC 7638 thumbprint — and remembers the
// result by the header's base64url text; a proof then costs its signature
// check, its claims and the replay cache. The signature is checked here
// with the standard library, as rp/ checks access tokens, rather than by
// go-jose, which parses the header (and its jwk) again for every proof.

// maxCachedHeaders bounds the header cache; it is emptied when full.
const maxCachedHeaders = 1024

// checkedHeader is a protected header that passed every check.
type checkedHeader struct {
	alg jose.SignatureAlgorithm
	key *jose.JSONWebKey // public
	jkt string
}

type headerCache struct {
	mu      sync.RWMutex
	headers map[string]*checkedHeader
}

func (c *headerCache) get(seg string) *checkedHeader {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.headers[seg]
}

func (c *headerCache) put(seg string, h *checkedHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headers == nil || len(c.headers) >= maxCachedHeaders {
		c.headers = make(map[string]*checkedHeader)
	}
	c.headers[seg] = h
}

// header returns the checked header whose base64url text is seg.
func (v *Verifier) header(seg string) (*checkedHeader, error) {
	if h := v.headers.get(seg); h != nil && v.allowed(string(h.alg)) {
		return h, nil
	}
	headJSON, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, refuse(ErrMalformed, "header is not base64url")
	}
	var head proofHeader
	if err := json.Unmarshal(headJSON, &head); err != nil {
		return nil, refuse(ErrMalformed, "header is not a JSON object")
	}
	if typ := strings.ToLower(head.Typ); typ != "dpop+jwt" && typ != "application/dpop+jwt" {
		return nil, refuse(ErrType, "")
	}
	if !v.allowed(head.Alg) {
		return nil, refuse(ErrAlgorithm, "%.20q", head.Alg)
	}
	if head.Crit != nil {
		return nil, refuse(ErrMalformed, "unsupported crit header")
	}
	key, err := publicKey(head.JWK, head.Alg)
	if err != nil {
		return nil, err
	}
	jkt, err := Thumbprint(key)
	if err != nil {
		return nil, refuse(ErrKey, "")
	}
	h := &checkedHeader{alg: jose.SignatureAlgorithm(head.Alg), key: key, jkt: jkt}
	v.headers.put(seg, h)
	return h, nil
}

// verify checks the signature sigSeg (base64url) over input (header "."
// payload) and returns the decoded payload.
func (h *checkedHeader) verify(input, sigSeg string) ([]byte, error) {
	sig, err := base64.RawURLEncoding.DecodeString(sigSeg)
	if err != nil {
		return nil, refuse(ErrMalformed, "signature is not base64url")
	}
	if !verifySignature(h.alg, h.key.Key, input, sig) {
		return nil, refuse(ErrSignature, "")
	}
	payload, err := base64.RawURLEncoding.DecodeString(input[strings.IndexByte(input, '.')+1:])
	if err != nil {
		return nil, refuse(ErrMalformed, "payload is not base64url")
	}
	return payload, nil
}

// verifySignature reports whether sig is alg's signature of input by key,
// which publicKey has matched to alg.
func verifySignature(alg jose.SignatureAlgorithm, key any, input string, sig []byte) bool {
	if alg == jose.EdDSA {
		pub, ok := key.(ed25519.PublicKey)
		return ok && ed25519.Verify(pub, []byte(input), sig)
	}
	var hash crypto.Hash
	var digest []byte
	switch alg {
	case jose.ES256, jose.RS256, jose.PS256:
		d := sha256.Sum256([]byte(input))
		hash, digest = crypto.SHA256, d[:]
	case jose.ES384, jose.RS384, jose.PS384:
		d := sha512.Sum384([]byte(input))
		hash, digest = crypto.SHA384, d[:]
	case jose.ES512, jose.RS512, jose.PS512:
		d := sha512.Sum512([]byte(input))
		hash, digest = crypto.SHA512, d[:]
	default:
		return false
	}
	switch pub := key.(type) {
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if !strings.HasPrefix(string(alg), "ES") || len(sig) != 2*size {
			return false
		}
		return ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:]))
	case *rsa.PublicKey:
		if strings.HasPrefix(string(alg), "PS") {
			return rsa.VerifyPSS(pub, hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
		return strings.HasPrefix(string(alg), "RS") && rsa.VerifyPKCS1v15(pub, hash, digest, sig) == nil
	}
	return false
}
