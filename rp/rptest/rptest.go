// Package rptest runs a small OpenID issuer on 127.0.0.1 for tests of APIs
// protected by package rp: it serves discovery and a JWKS, signs
// Bridgekeeper-shaped access tokens (RFC 9068), and rotates keys on demand.
package rptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is a running test issuer. Its methods are safe for concurrent use.
type Issuer struct {
	// URL is the issuer identifier, e.g. http://127.0.0.1:41234.
	URL string
	// JWKSURL is where the keys are published.
	JWKSURL string

	tb     testing.TB
	server *httptest.Server

	mu          sync.Mutex
	keys        []*jose.JSONWebKey // published, oldest first
	signing     *jose.JSONWebKey
	maxAge      int
	down        bool
	jwksFetches int
	serial      int
}

// NewIssuer starts an issuer with one RS256 signing key. It stops when the
// test ends.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	iss := &Issuer{tb: tb, maxAge: 300}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.serveDiscovery)
	mux.HandleFunc("GET /.well-known/jwks.json", iss.serveJWKS)
	iss.server = httptest.NewUnstartedServer(mux) // listens on 127.0.0.1
	iss.URL = "http://" + iss.server.Listener.Addr().String()
	iss.JWKSURL = iss.URL + "/.well-known/jwks.json"
	iss.Rotate(jose.RS256)
	iss.server.Start()
	tb.Cleanup(iss.server.Close)
	return iss
}

// Client returns an HTTP client for the issuer's server.
func (i *Issuer) Client() *http.Client { return i.server.Client() }

// AddKey generates a key for alg (RS256, ES256, ES384, EdDSA…) and publishes
// it without signing with it yet. It returns the key ID.
func (i *Issuer) AddKey(alg jose.SignatureAlgorithm) string {
	i.tb.Helper()
	key := i.generate(alg)
	i.mu.Lock()
	defer i.mu.Unlock()
	i.serial++
	key.KeyID = fmt.Sprintf("%s-%d-%s", alg, i.serial, rand.Text()[:8])
	i.keys = append(i.keys, key)
	return key.KeyID
}

// Use makes the published key kid the signing key.
func (i *Issuer) Use(kid string) {
	i.tb.Helper()
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.KeyID == kid {
			i.signing = k
			return
		}
	}
	i.tb.Fatalf("rptest: no key %q", kid)
}

// Rotate publishes a new key for alg and signs with it from now on. The old
// keys stay published until Remove.
func (i *Issuer) Rotate(alg jose.SignatureAlgorithm) string {
	i.tb.Helper()
	kid := i.AddKey(alg)
	i.Use(kid)
	return kid
}

// Remove takes kid out of the JWKS. Tokens signed with it are then refused
// by verifiers once their cache has been refreshed.
func (i *Issuer) Remove(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = slices.DeleteFunc(i.keys, func(k *jose.JSONWebKey) bool { return k.KeyID == kid })
}

// SigningKeyID returns the key ID new tokens are signed with.
func (i *Issuer) SigningKeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.signing.KeyID
}

// SetMaxAge sets the Cache-Control max-age of the JWKS response, in seconds.
func (i *Issuer) SetMaxAge(seconds int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.maxAge = seconds
}

// SetDown makes the JWKS endpoint answer 503 (true) or serve again (false).
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
}

// JWKSFetches counts the JWKS requests served so far.
func (i *Issuer) JWKSFetches() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.jwksFetches
}

// Claims are the claims of a token; Token fills in iss, iat, exp and jti
// when they are absent.
type Claims map[string]any

// Token signs an access token for subject with the given audience and
// space-separated scope, valid for ten minutes.
func (i *Issuer) Token(subject, audience, scope string) string {
	i.tb.Helper()
	return i.Sign(Claims{"sub": subject, "aud": audience, "scope": scope, "client_id": "test-client"})
}

// Sign signs claims with the current key, header typ "at+jwt".
func (i *Issuer) Sign(claims Claims) string {
	i.tb.Helper()
	return i.SignWith(claims, map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"})
}

// SignWith signs claims with the current key and extra protected headers
// (a nil value removes a header).
func (i *Issuer) SignWith(claims Claims, headers map[jose.HeaderKey]any) string {
	i.tb.Helper()
	i.mu.Lock()
	key := i.signing
	i.serial++
	jti := "jti-" + strconv.Itoa(i.serial)
	i.mu.Unlock()

	now := time.Now()
	full := Claims{"iss": i.URL, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": jti}
	maps.Copy(full, claims)
	for k, v := range full {
		if v == nil {
			delete(full, k)
		}
	}
	payload, err := json.Marshal(full)
	if err != nil {
		i.tb.Fatalf("rptest: marshal claims: %v", err)
	}
	opts := &jose.SignerOptions{}
	for k, v := range headers {
		if v != nil {
			opts.WithHeader(k, v)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, opts)
	if err != nil {
		i.tb.Fatalf("rptest: signer: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		i.tb.Fatalf("rptest: sign: %v", err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		i.tb.Fatalf("rptest: serialize: %v", err)
	}
	return raw
}

// PrivateKey returns the private key of kid, to forge tokens in tests.
func (i *Issuer) PrivateKey(kid string) crypto.Signer {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.KeyID == kid {
			return k.Key.(crypto.Signer)
		}
	}
	return nil
}

func (i *Issuer) generate(alg jose.SignatureAlgorithm) *jose.JSONWebKey {
	var key crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		i.tb.Fatalf("rptest: unsupported algorithm %s", alg)
	}
	if err != nil {
		i.tb.Fatalf("rptest: generate %s key: %v", alg, err)
	}
	return &jose.JSONWebKey{Key: key, Algorithm: string(alg), Use: "sig"}
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                i.URL,
		"jwks_uri":                              i.JWKSURL,
		"authorization_endpoint":                i.URL + "/oauth2/auth",
		"token_endpoint":                        i.URL + "/oauth2/token",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.mu.Lock()
	i.jwksFetches++
	if i.down {
		i.mu.Unlock()
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(i.keys))}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, k.Public())
	}
	maxAge := i.maxAge
	i.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	writeJSON(w, set)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
