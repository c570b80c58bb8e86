// Package dpop verifies DPoP proofs (RFC 9449): the JWS a client sends in the
// DPoP header to show it holds the private key its tokens are bound to.
//
// A Verifier checks one proof against one HTTP request: the compact JWS, its
// typ (dpop+jwt), an asymmetric alg from an allow-list, an embedded public
// jwk (private parts refused), the signature, htm and htu (§4.3: htu compared
// without query and fragment, scheme and host case-folded, default port
// dropped), iat within a window, ath when an access token is presented, the
// key against a bound thumbprint, an optional nonce hook and an optional
// replay cache. Every refusal is an *Error carrying the RFC's error code.
package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// HeaderName is the request header carrying the proof, and the response
// header carrying a server nonce is NonceHeader.
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// MaxProofBytes bounds the proofs Verify looks at. An RSA-4096 jwk and a
// long htu fit several times over.
const MaxProofBytes = 8 << 10

// maxJTIBytes bounds the jti (RFC 9449 asks for 96 bits of randomness; a
// client sending kilobytes is abusing the replay cache).
const maxJTIBytes = 256

// minRSABits is the smallest RSA modulus a proof may use.
const minRSABits = 2048

// DefaultAlgorithms are the proof algorithms accepted when a Verifier lists
// none, in the order discovery advertises them.
var DefaultAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.PS256, jose.EdDSA}

// Defaults for the iat window: a proof may be a minute old, and come from
// a clock up to 30 seconds ahead (RFC 9449 §11.1 asks for some allowance
// of clock skew; a browser's clock is often a few seconds off).
const (
	DefaultMaxAge = 60 * time.Second
	DefaultLeeway = 30 * time.Second
)

// ReplayCache remembers proofs already used. Claim records key until
// expires; it returns an error wrapping ErrReplay when key is already
// recorded and unexpired, and any other error when the cache failed (Verify
// then returns that error, which is not an *Error: answer 500/503, not 400).
type ReplayCache interface {
	Claim(ctx context.Context, key string, expires time.Time) error
}

// Verifier checks proofs. The zero value accepts DefaultAlgorithms with the
// default window, checks no nonce and remembers no jti (the caller then does
// its own replay check with Proof.ReplayKey).
type Verifier struct {
	// Algorithms allowed in the proof's alg; asymmetric ones only (a
	// symmetric or "none" entry is ignored).
	Algorithms []jose.SignatureAlgorithm
	// MaxAge is how old a proof's iat may be; Leeway how far in the future.
	MaxAge, Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Nonce, when set, is called with the proof's nonce claim ("" when it
	// has none); any error refuses the proof with use_dpop_nonce.
	Nonce func(ctx context.Context, nonce string) error
	// Replay, when set, is claimed with the proof's ReplayKey after every
	// other check passed.
	Replay ReplayCache
}

// Request is what the proof must match.
type Request struct {
	// Method is the HTTP method of the request (htm).
	Method string
	// URL is the absolute URL the client addressed (htu); its query and
	// fragment are ignored.
	URL string
	// AccessToken, when not empty, is the token presented with the proof;
	// the proof must then carry its ath.
	AccessToken string
	// JKT, when not empty, is the thumbprint the token is bound to; the
	// proof's key must have it.
	JKT string
}

// Proof is a verified proof.
type Proof struct {
	JTI      string
	Method   string // htm
	URL      string // htu as sent
	IssuedAt time.Time
	Nonce    string
	// Key is the public key that signed the proof, JKT its RFC 7638
	// SHA-256 thumbprint (base64url, no padding): the value of cnf.jkt.
	Key jose.JSONWebKey
	JKT string
}

// ReplayKey is the replay-cache key of the proof: a hash of its key's
// thumbprint and jti, so one client cannot burn another's jti and the key
// has a fixed length.
func (p *Proof) ReplayKey() string {
	h := sha256.New()
	h.Write([]byte(p.JKT))
	h.Write([]byte{0})
	h.Write([]byte(p.JTI))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// ReplayUntil is how long the proof's jti must be remembered: until its iat
// has left the window v accepts.
func (v *Verifier) ReplayUntil(p *Proof) time.Time {
	return p.IssuedAt.Add(v.maxAge() + time.Second)
}

// FromHeader returns the single DPoP header value of h: ErrMissing when
// there is none, ErrMultiple when there are several (§4.3 check 1).
func FromHeader(h http.Header) (string, error) {
	vals := h.Values(HeaderName)
	switch {
	case len(vals) == 0 || (len(vals) == 1 && strings.TrimSpace(vals[0]) == ""):
		return "", refuse(ErrMissing, "")
	case len(vals) > 1:
		return "", refuse(ErrMultiple, "")
	}
	return strings.TrimSpace(vals[0]), nil
}

// AccessTokenHash is the ath of an access token: base64url(SHA-256(token)).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key,
// base64url-encoded without padding.
func Thumbprint(k *jose.JSONWebKey) (string, error) {
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// NormalizeURL returns raw as htu is compared (§4.3, RFC 3986 §6.2.2 and
// §6.2.3): absolute http(s) only, scheme and host lower-cased, the
// default port dropped, an empty path as "/", query and fragment removed.
func NormalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("dpop: url: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", fmt.Errorf("dpop: url %q: not an absolute http(s) URL", raw)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// proofHeader is the protected header, decoded by us before go-jose so each
// abuse gets its own error.
type proofHeader struct {
	Typ string          `json:"typ"`
	Alg string          `json:"alg"`
	JWK json.RawMessage `json:"jwk"`
}

// proofClaims are the claims of §4.2. iat is a float so 1.7e9 and
// 1700000000.5 both parse; ath and nonce are pointers to tell absent from
// empty.
type proofClaims struct {
	JTI   string   `json:"jti"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	IAT   *float64 `json:"iat"`
	ATH   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// privateMembers are JWK members that only a private or symmetric key has.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxAge() time.Duration {
	if v.MaxAge > 0 {
		return v.MaxAge
	}
	return DefaultMaxAge
}

func (v *Verifier) leeway() time.Duration {
	if v.Leeway > 0 {
		return v.Leeway
	}
	return DefaultLeeway
}

func (v *Verifier) algorithms() []jose.SignatureAlgorithm {
	if len(v.Algorithms) == 0 {
		return DefaultAlgorithms
	}
	return v.Algorithms
}

// AllowedAlgorithms lists the algorithms v accepts (for discovery's
// dpop_signing_alg_values_supported and a resource server's
// WWW-Authenticate algs).
func (v *Verifier) AllowedAlgorithms() []string {
	var out []string
	for _, a := range v.algorithms() {
		if asymmetric(a) {
			out = append(out, string(a))
		}
	}
	return out
}

func asymmetric(a jose.SignatureAlgorithm) bool {
	switch a {
	case jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512, jose.EdDSA:
		return true
	}
	return false
}

func (v *Verifier) allowed(alg string) bool {
	for _, a := range v.algorithms() {
		if string(a) == alg && asymmetric(a) {
			return true
		}
	}
	return false
}

// Verify checks proof against req and returns it. A refused proof is an
// *Error (see Code); a failing Nonce hook is use_dpop_nonce; a replay cache
// failure is returned wrapped, not as an *Error.
func (v *Verifier) Verify(ctx context.Context, proof string, req Request) (*Proof, error) {
	if proof == "" {
		return nil, refuse(ErrMissing, "")
	}
	if len(proof) > MaxProofBytes {
		return nil, refuse(ErrMalformed, "longer than %d bytes", MaxProofBytes)
	}
	headSeg, rest, ok1 := strings.Cut(proof, ".")
	_, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return nil, refuse(ErrMalformed, "not a compact JWS")
	}
	headJSON, err := base64.RawURLEncoding.DecodeString(headSeg)
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
	key, err := publicKey(head.JWK, head.Alg)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(head.Alg)})
	if err != nil {
		return nil, refuse(ErrMalformed, "")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, refuse(ErrSignature, "")
	}
	var c proofClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, refuse(ErrClaims, "payload is not a JSON object of the right types")
	}
	if c.JTI == "" || len(c.JTI) > maxJTIBytes || c.HTM == "" || c.HTU == "" || c.IAT == nil {
		return nil, refuse(ErrClaims, "jti, htm, htu and iat are required")
	}
	if c.HTM != req.Method {
		return nil, refuse(ErrMethod, "")
	}
	want, err := NormalizeURL(req.URL)
	if err != nil {
		return nil, fmt.Errorf("dpop: request URL: %w", err)
	}
	if got, err := NormalizeURL(c.HTU); err != nil || got != want {
		return nil, refuse(ErrURL, "")
	}
	iat := *c.IAT
	if math.IsNaN(iat) || math.IsInf(iat, 0) || iat < 0 || iat > 1<<40 {
		return nil, refuse(ErrClaims, "iat is not a time")
	}
	issued := time.Unix(int64(iat), 0)
	now := v.now()
	if issued.Before(now.Add(-v.maxAge())) || issued.After(now.Add(v.leeway())) {
		return nil, refuse(ErrIssuedAt, "")
	}
	if req.AccessToken != "" {
		if c.ATH == nil || subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(AccessTokenHash(req.AccessToken))) != 1 {
			return nil, refuse(ErrTokenHash, "")
		}
	}
	jkt, err := Thumbprint(key)
	if err != nil {
		return nil, refuse(ErrKey, "")
	}
	if req.JKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(req.JKT)) != 1 {
		return nil, refuse(ErrKeyMismatch, "")
	}
	p := &Proof{JTI: c.JTI, Method: c.HTM, URL: c.HTU, IssuedAt: issued, Key: *key, JKT: jkt}
	if c.Nonce != nil {
		p.Nonce = *c.Nonce
	}
	if v.Nonce != nil {
		if err := v.Nonce(ctx, p.Nonce); err != nil {
			return nil, refuse(ErrNonce, "")
		}
	}
	if v.Replay != nil {
		if err := v.Replay.Claim(ctx, p.ReplayKey(), v.ReplayUntil(p)); err != nil {
			if errors.Is(err, ErrReplay) {
				return nil, refuse(ErrReplay, "")
			}
			return nil, fmt.Errorf("dpop: replay cache: %w", err)
		}
	}
	return p, nil
}

// publicKey decodes the header's jwk and checks that it is a public key of
// the kind and size alg needs.
func publicKey(raw json.RawMessage, alg string) (*jose.JSONWebKey, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, refuse(ErrKey, "no jwk in the header")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, refuse(ErrKey, "jwk is not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return nil, refuse(ErrPrivateKey, "")
		}
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, refuse(ErrKey, "")
	}
	if !k.Valid() || !k.IsPublic() {
		return nil, refuse(ErrKey, "")
	}
	ok := false
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case string(jose.ES256):
			ok = pub.Curve == elliptic.P256()
		case string(jose.ES384):
			ok = pub.Curve == elliptic.P384()
		case string(jose.ES512):
			ok = pub.Curve == elliptic.P521()
		}
	case *rsa.PublicKey:
		ok = strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
		if ok && pub.N.BitLen() < minRSABits {
			return nil, refuse(ErrKey, "RSA key shorter than %d bits", minRSABits)
		}
	case ed25519.PublicKey:
		ok = alg == string(jose.EdDSA)
	}
	if !ok {
		return nil, refuse(ErrKey, "jwk does not fit alg")
	}
	return &k, nil
}
