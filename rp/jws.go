package rp

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/internal/jwsig"
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
	if _, ok := jwsig.Hash(h.Alg); !ok {
		return jwsHeader{}, fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	}
	if h.Crit != nil {
		return jwsHeader{}, fmt.Errorf("%w: unsupported crit header", ErrMalformed)
	}
	return h, nil
}

// verifySignature checks sig over input with key k, using k's algorithm (the
// caller has made sure the token's header names that same algorithm).
func verifySignature(k verifyKey, input string, sig []byte) error {
	return jwsig.Verify(k.alg, k.key, input, sig)
}
