package dpop

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/internal/jwsig"
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
	if jwsig.Verify(h.alg, h.key.Key, input, sig) != nil {
		return nil, refuse(ErrSignature, "")
	}
	payload, err := base64.RawURLEncoding.DecodeString(input[strings.IndexByte(input, '.')+1:])
	if err != nil {
		return nil, refuse(ErrMalformed, "payload is not base64url")
	}
	return payload, nil
}
