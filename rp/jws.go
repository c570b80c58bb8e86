package rp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// maxTokenBytes bounds the tokens Verify looks at.
const maxTokenBytes = 16 << 10

// maxCachedHeaders bounds the header cache. An issuer's tokens share a few
// distinct headers (one per signing key), so a small cache serves them all.
const maxCachedHeaders = 64

// jwsHeader is the protected header of a compact JWS.
type jwsHeader struct {
	Alg  jose.SignatureAlgorithm `json:"alg"`
	Kid  string                  `json:"kid"`
	Typ  string                  `json:"typ"`
	Crit json.RawMessage         `json:"crit"`
}

// compactJWS is a token split into its parts; input is the signed text
// (header "." payload).
type compactJWS struct {
	header  jwsHeader
	input   string
	headSeg string
	payload string // base64url
	sig     string // base64url
}

// splitCompact splits a compact JWS without decoding its payload.
func splitCompact(raw string) (compactJWS, error) {
	if len(raw) > maxTokenBytes {
		return compactJWS{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenBytes)
	}
	head, rest, ok1 := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return compactJWS{}, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	return compactJWS{input: raw[:len(head)+1+len(payload)], headSeg: head, payload: payload, sig: sig}, nil
}

// headerCache remembers the decoded headers of tokens that verified, keyed by
// their base64url text, so that the common case skips decoding them.
type headerCache struct {
	mu      sync.RWMutex
	headers map[string]jwsHeader
}

func (c *headerCache) get(seg string) (jwsHeader, bool) {
	c.mu.RLock()
	h, ok := c.headers[seg]
	c.mu.RUnlock()
	return h, ok
}

func (c *headerCache) put(seg string, h jwsHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headers == nil {
		c.headers = make(map[string]jwsHeader)
	}
	if len(c.headers) >= maxCachedHeaders {
		clear(c.headers)
	}
	c.headers[seg] = h
}

// decodeHeader decodes and checks a protected header: a signature algorithm
// this package implements (never none, never HMAC) and no critical
// extensions, since none is understood.
func decodeHeader(seg string) (jwsHeader, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return jwsHeader{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	var h jwsHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return jwsHeader{}, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if _, ok := algorithmHash(h.Alg); !ok {
		return jwsHeader{}, fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	}
	if h.Crit != nil {
		return jwsHeader{}, fmt.Errorf("%w: unsupported crit header", ErrMalformed)
	}
	return h, nil
}

// algorithmHash returns the hash of an asymmetric JWS algorithm; ok is false
// for every algorithm this package refuses.
func algorithmHash(alg jose.SignatureAlgorithm) (crypto.Hash, bool) {
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		return crypto.SHA256, true
	case jose.RS384, jose.PS384, jose.ES384:
		return crypto.SHA384, true
	case jose.RS512, jose.PS512, jose.ES512:
		return crypto.SHA512, true
	case jose.EdDSA:
		return 0, true
	}
	return 0, false
}

var errBadSignature = errors.New("signature does not verify")

// verifySignature checks sig over input with key k, using k's algorithm (the
// caller has made sure the token's header names that same algorithm).
func verifySignature(k verifyKey, input string, sig []byte) error {
	if k.alg == jose.EdDSA {
		pub, ok := k.key.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(pub, []byte(input), sig) {
			return errBadSignature
		}
		return nil
	}
	hash, ok := algorithmHash(k.alg)
	if !ok {
		return errBadSignature
	}
	var digest []byte
	switch hash {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(input))
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(input))
		digest = d[:]
	default:
		d := sha512.Sum512([]byte(input))
		digest = d[:]
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		switch k.alg {
		case jose.RS256, jose.RS384, jose.RS512:
			return rsa.VerifyPKCS1v15(pub, hash, digest, sig)
		case jose.PS256, jose.PS384, jose.PS512:
			return rsa.VerifyPSS(pub, hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return errBadSignature
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if ecdsa.Verify(pub, digest, r, s) {
			return nil
		}
	}
	return errBadSignature
}
