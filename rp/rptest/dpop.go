package rptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// A ProofKey is a client's DPoP key (RFC 9449): it signs the proofs that go
// with the access tokens bound to it. Its methods are safe for concurrent
// use.
type ProofKey struct {
	tb  testing.TB
	jwk *jose.JSONWebKey // private
}

// NewProofKey generates a DPoP key for alg: ES256, RS256, PS256 or EdDSA.
func NewProofKey(tb testing.TB, alg jose.SignatureAlgorithm) *ProofKey {
	tb.Helper()
	switch alg {
	case jose.ES256, jose.RS256, jose.PS256, jose.EdDSA:
	default:
		tb.Fatalf("rptest: no proof keys for %s", alg)
	}
	iss := &Issuer{tb: tb}
	return &ProofKey{tb: tb, jwk: iss.generate(alg)}
}

// PublicJWK is the public key, as a proof's jwk header carries it.
func (k *ProofKey) PublicJWK() jose.JSONWebKey {
	pub := k.jwk.Public()
	pub.Algorithm, pub.Use = "", ""
	return pub
}

// PrivateJWK is the whole key, private parts included: what a proof must
// never carry.
func (k *ProofKey) PrivateJWK() jose.JSONWebKey {
	priv := *k.jwk
	priv.Algorithm, priv.Use = "", ""
	return priv
}

// Thumbprint is the key's RFC 7638 SHA-256 thumbprint, base64url: the
// cnf.jkt of the tokens bound to it.
func (k *ProofKey) Thumbprint() string {
	pub := k.PublicJWK()
	sum, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		k.tb.Fatalf("rptest: thumbprint: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// Proof signs a fresh proof for a request: htm method, htu url, a new jti,
// iat now, and ath the hash of accessToken (none when it is empty).
func (k *ProofKey) Proof(method, url, accessToken string) string {
	k.tb.Helper()
	return k.ProofWith(Claims{"htm": method, "htu": url, "ath": ATH(accessToken)}, nil)
}

// ProofWith signs a proof with extra or replaced claims and headers (a nil
// value removes one). By default the header is typ dpop+jwt, alg the key's,
// jwk its public part; the claims a new jti and iat now.
func (k *ProofKey) ProofWith(claims Claims, headers map[string]any) string {
	k.tb.Helper()
	header := map[string]any{"typ": "dpop+jwt", "alg": k.jwk.Algorithm, "jwk": k.PublicJWK()}
	maps.Copy(header, headers)
	full := Claims{"jti": rand.Text(), "iat": time.Now().Unix()}
	maps.Copy(full, claims)
	return k.sign(dropNil(header), dropNil(full))
}

// SignRaw signs header and claims exactly as given with the key, for proofs
// a test forges (alg none aside, which has no signature: use Unsigned).
func (k *ProofKey) SignRaw(header, claims map[string]any) string {
	k.tb.Helper()
	return k.sign(header, claims)
}

// Unsigned is a JWS with alg none: header and claims, and no signature.
func Unsigned(tb testing.TB, header, claims map[string]any) string {
	tb.Helper()
	return segment(tb, header) + "." + segment(tb, claims) + "."
}

// ATH is a proof's ath for accessToken: base64url SHA-256 of the token
// (empty for no token).
func ATH(accessToken string) any {
	if accessToken == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// BoundToken signs an access token like Token, bound to the DPoP key whose
// thumbprint is jkt (claim cnf.jkt, RFC 9449 §6.1).
func (i *Issuer) BoundToken(subject, audience, scope, jkt string) string {
	i.tb.Helper()
	return i.Sign(Claims{"sub": subject, "aud": audience, "scope": scope, "client_id": "test-client",
		"cnf": map[string]string{"jkt": jkt}})
}

func dropNil[M ~map[string]any](m M) M {
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	return m
}

func segment(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("rptest: marshal: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (k *ProofKey) sign(header, claims map[string]any) string {
	k.tb.Helper()
	input := segment(k.tb, header) + "." + segment(k.tb, claims)
	var sig []byte
	var err error
	switch key := k.jwk.Key.(type) {
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256([]byte(input))
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, key, digest[:]); err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case *rsa.PrivateKey:
		digest := sha256.Sum256([]byte(input))
		if k.jwk.Algorithm == string(jose.PS256) {
			sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, []byte(input))
	}
	if err != nil || sig == nil {
		k.tb.Fatalf("rptest: sign proof: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// An Abuse is a request a thief or a forger might make with a DPoP-bound
// access token, and the RFC 9449 error a resource server must refuse it
// with (status 401, in a DPoP challenge).
type Abuse struct {
	Name   string
	Scheme string   // of the Authorization header: "DPoP" or "Bearer"
	Proofs []string // the DPoP header values (none, one, or two)
	Error  string   // "invalid_token" or "invalid_dpop_proof"
}

// Abuses lists the ways to misuse token, bound to holder, in a GET of url:
// the token copied out (as Bearer, with no proof, with another key's
// proof), proofs for another request (otherURL of the same API, another
// host, another method, another token), the replay of used — a proof of
// holder's for this request that the API has already accepted —, an old or
// future iat, missing claims, two proofs, and forgeries (typ, no jwk, alg
// none, HS256 keyed with the public jwk, a private jwk, a bad signature,
// garbage).
func Abuses(tb testing.TB, holder *ProofKey, token, url, otherURL, used string) []Abuse {
	tb.Helper()
	thief := NewProofKey(tb, jose.ES256)
	now := time.Now().Unix()
	claims := func(extra Claims) Claims {
		c := Claims{"htm": "GET", "htu": url, "ath": ATH(token)}
		maps.Copy(c, extra)
		return c
	}
	pub := holder.PublicJWK()
	secret, err := json.Marshal(&pub)
	if err != nil {
		tb.Fatalf("rptest: %v", err)
	}
	hs256 := strings.TrimSuffix(Unsigned(tb, map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": pub},
		claims(Claims{"jti": rand.Text(), "iat": now})), ".")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(hs256))
	hs256 += "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	good := holder.Proof("GET", url, token)
	dot := strings.LastIndexByte(good, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(good[dot+1:])
	sig[len(sig)/2] ^= 1
	badSig := good[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)

	host := url[strings.Index(url, "://")+3:]
	path := host[strings.IndexByte(host+"/", '/'):]
	proof := func(name, code string, p string) Abuse {
		return Abuse{Name: name, Scheme: "DPoP", Proofs: []string{p}, Error: code}
	}
	const badProof, badToken = "invalid_dpop_proof", "invalid_token"
	return []Abuse{
		{Name: "copied token as Bearer", Scheme: "Bearer", Error: badToken},
		{Name: "copied token, no proof", Scheme: "DPoP", Error: badProof},
		proof("copied token, empty proof", badProof, ""),
		proof("copied token, a proof by another key", badToken, thief.Proof("GET", url, token)),
		proof("replayed proof", badProof, used),
		proof("proof for another URL", badProof, holder.Proof("GET", otherURL, token)),
		proof("proof for another host", badProof, holder.Proof("GET", "http://127.0.0.1:1"+path, token)),
		proof("proof for another method", badProof, holder.Proof("POST", url, token)),
		proof("proof for another token", badProof, holder.Proof("GET", url, token+"x")),
		proof("old iat", badProof, holder.ProofWith(claims(Claims{"iat": now - 600}), nil)),
		proof("iat in the future", badProof, holder.ProofWith(claims(Claims{"iat": now + 600}), nil)),
		proof("no ath", badProof, holder.ProofWith(claims(Claims{"ath": nil}), nil)),
		proof("no jti", badProof, holder.ProofWith(claims(Claims{"jti": nil}), nil)),
		{Name: "two proofs", Scheme: "DPoP", Proofs: []string{holder.Proof("GET", url, token), holder.Proof("GET", url, token)}, Error: badProof},
		proof("typ JWT", badProof, holder.ProofWith(claims(nil), map[string]any{"typ": "JWT"})),
		proof("no jwk", badProof, holder.ProofWith(claims(nil), map[string]any{"jwk": nil})),
		proof("alg none", badProof, Unsigned(tb, map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": pub},
			claims(Claims{"jti": rand.Text(), "iat": now}))),
		proof("HS256 keyed with the public jwk", badProof, hs256),
		proof("private jwk", badProof, holder.ProofWith(claims(nil), map[string]any{"jwk": holder.PrivateJWK()})),
		proof("bad signature", badProof, badSig),
		proof("not a JWS", badProof, "not-a-proof"),
	}
}
