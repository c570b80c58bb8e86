package rp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

const testAudience = "https://api.example.test"

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is a settable time source for cache and expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newVerifier(t *testing.T, iss *rptest.Issuer, opts ...rp.Option) *rp.Verifier {
	t.Helper()
	opts = append([]rp.Option{rp.WithAudience(testAudience), rp.WithLogger(quietLogger)}, opts...)
	v, err := rp.NewVerifier(t.Context(), iss.URL, opts...)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifyValidToken(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	raw := iss.Sign(rptest.Claims{
		"sub": "user-1", "aud": []string{"other", testAudience}, "scope": "openid checkout",
		"client_id": "spa", "email": "a@example.test",
	})
	c, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "user-1" || c.Issuer != iss.URL || c.ClientID != "spa" || c.ID == "" {
		t.Errorf("claims = %+v", c)
	}
	if !c.HasScope("checkout") || c.HasScope("admin") || !c.HasScopes("openid", "checkout") {
		t.Errorf("scopes = %q", c.Scopes)
	}
	if time.Until(c.ExpiresAt) < 9*time.Minute || c.IssuedAt.IsZero() {
		t.Errorf("exp %v iat %v", c.ExpiresAt, c.IssuedAt)
	}
	var email string
	if ok, err := c.Claim("email", &email); !ok || err != nil || email != "a@example.test" {
		t.Errorf("Claim(email) = %v, %v, %q", ok, err, email)
	}
	if ok, _ := c.Claim("missing", &email); ok {
		t.Error("Claim(missing) reported present")
	}
	m, err := c.Map()
	if err != nil || m["client_id"] != "spa" {
		t.Errorf("Map = %v, %v", m, err)
	}
	out, _ := json.Marshal(c)
	if !strings.Contains(string(out), `"email":"a@example.test"`) {
		t.Errorf("MarshalJSON = %s", out)
	}
}

func TestVerifyScpArrayAndStringAudience(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	c, err := v.Verify(t.Context(), iss.Sign(rptest.Claims{"aud": testAudience, "scp": []string{"read", "write"}}))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !c.HasScopes("read", "write") || len(c.Audience) != 1 {
		t.Errorf("claims = %+v", c)
	}
}

func TestVerifyAlgorithms(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss, rp.WithRefetchInterval(0))
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.RS512, jose.ES256, jose.ES384, jose.EdDSA} {
		iss.Rotate(alg)
		token := iss.Token("u", testAudience, "")
		if _, err := v.Verify(t.Context(), token); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
		// Flip one bit of the signature: refused.
		parts := strings.Split(token, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[len(sig)/2] ^= 1
		parts[2] = base64.RawURLEncoding.EncodeToString(sig)
		if _, err := v.Verify(t.Context(), strings.Join(parts, ".")); !errors.Is(err, rp.ErrSignature) {
			t.Errorf("%s with a damaged signature: err = %v, want ErrSignature", alg, err)
		}
	}
}

func TestNewVerifierNeedsAudienceDecision(t *testing.T) {
	iss := rptest.NewIssuer(t)
	if _, err := rp.NewVerifier(t.Context(), iss.URL); err == nil {
		t.Fatal("NewVerifier without audience option succeeded")
	}
	v, err := rp.NewVerifier(t.Context(), iss.URL, rp.WithAnyAudience())
	if err != nil {
		t.Fatalf("WithAnyAudience: %v", err)
	}
	if _, err := v.Verify(t.Context(), iss.Token("u", "some-other-api", "")); err != nil {
		t.Errorf("WithAnyAudience refused a token: %v", err)
	}
}

func TestNewVerifierDiscoveryIssuerMismatch(t *testing.T) {
	iss := rptest.NewIssuer(t)
	_, err := rp.NewVerifier(t.Context(), iss.URL+"/", rp.WithAnyAudience())
	if err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("err = %v, want issuer mismatch", err)
	}
}

func TestNewVerifierUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if _, err := rp.NewVerifier(t.Context(), srv.URL, rp.WithAnyAudience()); err == nil {
		t.Fatal("NewVerifier against a closed server succeeded")
	}
}

func TestVerifyRefusesBadClaims(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now), rp.WithLeeway(30*time.Second))
	now := clk.Now()
	cases := []struct {
		name   string
		claims rptest.Claims
		want   error
	}{
		{"wrong audience", rptest.Claims{"aud": "https://other.test"}, rp.ErrAudience},
		{"no audience", rptest.Claims{}, rp.ErrAudience},
		{"wrong issuer", rptest.Claims{"aud": testAudience, "iss": "https://evil.test"}, rp.ErrIssuer},
		{"expired", rptest.Claims{"aud": testAudience, "exp": now.Add(-31 * time.Second).Unix()}, rp.ErrExpired},
		{"no exp", rptest.Claims{"aud": testAudience, "exp": nil}, rp.ErrMalformed},
		{"exp not a number", rptest.Claims{"aud": testAudience, "exp": "tomorrow"}, rp.ErrMalformed},
		{"not yet valid", rptest.Claims{"aud": testAudience, "nbf": now.Add(time.Minute).Unix()}, rp.ErrNotYetValid},
		{"issued in the future", rptest.Claims{"aud": testAudience, "iat": now.Add(time.Minute).Unix()}, rp.ErrIssuedInFuture},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), iss.Sign(tc.claims))
			if !errors.Is(err, tc.want) || !errors.Is(err, rp.ErrInvalidToken) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now), rp.WithLeeway(30*time.Second))
	now := clk.Now()
	raw := iss.Sign(rptest.Claims{"aud": testAudience, "exp": now.Add(-20 * time.Second).Unix(),
		"nbf": now.Add(20 * time.Second).Unix(), "iat": now.Add(20 * time.Second).Unix()})
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("token within leeway refused: %v", err)
	}
	clk.Advance(15 * time.Second)
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, rp.ErrExpired) {
		t.Fatalf("err = %v, want expired once past the leeway", err)
	}
}

func TestVerifyTokenType(t *testing.T) {
	iss := rptest.NewIssuer(t)
	strict := newVerifier(t, iss)
	relaxed := newVerifier(t, iss, rp.WithTokenTypes())
	idTokens := newVerifier(t, iss, rp.WithTokenTypes("JWT"))
	claims := rptest.Claims{"aud": testAudience}
	cases := []struct {
		typ                       any
		strictOK, relaxedOK, idOK bool
	}{
		{"at+jwt", true, true, false},
		{"application/at+JWT", true, true, false},
		{"JWT", false, true, true},
		{nil, false, true, false},
	}
	for _, tc := range cases {
		raw := iss.SignWith(claims, map[jose.HeaderKey]any{jose.HeaderType: tc.typ})
		for _, check := range []struct {
			name string
			v    *rp.Verifier
			ok   bool
		}{{"strict", strict, tc.strictOK}, {"relaxed", relaxed, tc.relaxedOK}, {"id", idTokens, tc.idOK}} {
			_, err := check.v.Verify(t.Context(), raw)
			if (err == nil) != check.ok {
				t.Errorf("typ %v, %s verifier: err = %v, want ok=%v", tc.typ, check.name, err, check.ok)
			}
			if err != nil && !errors.Is(err, rp.ErrTokenType) {
				t.Errorf("typ %v: err = %v, want ErrTokenType", tc.typ, err)
			}
		}
	}
}

// forge builds a compact JWS from a header and claims, signed by sign.
func forge(t *testing.T, header, claims any, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(input)))
}

func TestVerifyRefusesAlgorithmTricks(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	kid := iss.SigningKeyID()
	claims := map[string]any{"iss": iss.URL, "aud": testAudience, "sub": "attacker",
		"exp": time.Now().Add(time.Hour).Unix()}

	// alg none with an empty signature.
	none := forge(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, claims,
		func([]byte) []byte { return nil })

	// HS256 keyed with the public key, the classic confusion attack.
	pubDER, err := x509.MarshalPKIXPublicKey(iss.PrivateKey(kid).Public())
	if err != nil {
		t.Fatal(err)
	}
	hsSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubDER},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	hsJWS, _ := hsSigner.Sign(payload)
	hs256, _ := hsJWS.CompactSerialize()

	// PS256 with the RS256 key: a valid signature, but not the key's algorithm.
	psSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: iss.PrivateKey(kid)},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	psJWS, _ := psSigner.Sign(payload)
	ps256, _ := psJWS.CompactSerialize()

	// A signature by a key that is not the issuer's, under the issuer's kid.
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: otherKey},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	otherJWS, _ := otherSigner.Sign(payload)
	stranger, _ := otherJWS.CompactSerialize()

	// A valid token whose payload was changed afterwards.
	good := iss.Token("user", testAudience, "")
	if _, err := v.Verify(t.Context(), good); err != nil { // caches its header
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	tampered := strings.Join(parts, ".")

	// A critical header extension no one here understands.
	critSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: iss.PrivateKey(kid)},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid).WithHeader("exp-ext", 1).WithCritical("exp-ext"))
	if err != nil {
		t.Fatal(err)
	}
	critJWS, _ := critSigner.Sign(payload)
	crit, _ := critJWS.CompactSerialize()

	// The attacker's own public key embedded in the header, under the
	// issuer's kid: the header's key is never used.
	embedSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256,
		Key: &jose.JSONWebKey{Key: otherKey, KeyID: kid, Algorithm: "RS256"}},
		&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{jose.HeaderType: "at+jwt"}})
	if err != nil {
		t.Fatal(err)
	}
	embedJWS, _ := embedSigner.Sign(payload)
	embedded, _ := embedJWS.CompactSerialize()
	if !strings.Contains(mustDecodeSegment(t, embedded), `"jwk"`) {
		t.Fatal("test token has no embedded jwk")
	}

	cases := []struct {
		name string
		raw  string
		want error
	}{
		{"embedded jwk", embedded, rp.ErrSignature},
		{"crit header", crit, rp.ErrMalformed},
		{"oversized", strings.Repeat("a", 20<<10) + ".b.c", rp.ErrMalformed},
		{"alg none", none, rp.ErrAlgorithm},
		{"HS256 with the public key", hs256, rp.ErrAlgorithm},
		{"PS256 with an RS256 key", ps256, rp.ErrAlgorithm},
		{"foreign key", stranger, rp.ErrSignature},
		{"tampered payload", tampered, rp.ErrSignature},
		{"garbage", "not.a.jwt", rp.ErrMalformed},
		{"two parts", "abc.def", rp.ErrMalformed},
		{"empty", "", rp.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func mustDecodeSegment(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyTokenWithoutKeyID(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: iss.PrivateKey(iss.SigningKeyID())},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"iss": iss.URL, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()})
	jws, _ := signer.Sign(payload)
	raw, _ := jws.CompactSerialize()
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("token without kid refused: %v", err)
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	good, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	goodJWK, _ := json.Marshal(jose.JSONWebKey{Key: &good.PublicKey, KeyID: "good", Algorithm: "ES256", Use: "sig"})
	smallJWK, _ := json.Marshal(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "small", Algorithm: "RS256"})
	mismatch, _ := json.Marshal(jose.JSONWebKey{Key: &good.PublicKey, KeyID: "mismatch", Algorithm: "RS256"})
	encKey, _ := json.Marshal(jose.JSONWebKey{Key: &good.PublicKey, KeyID: "enc", Use: "enc"})
	jwks := `{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},` +
		`{"kty":"unknown","kid":"odd"},` + string(smallJWK) + "," + string(mismatch) + "," + string(encKey) + "," + string(goodJWK) + `]}`

	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, jwks) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer = srv.URL

	v, err := rp.NewVerifier(t.Context(), issuer, rp.WithAudience(testAudience), rp.WithLogger(quietLogger))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	sign := func(kid string, alg jose.SignatureAlgorithm, key any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(map[string]any{"iss": issuer, "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix()})
		jws, _ := s.Sign(p)
		raw, _ := jws.CompactSerialize()
		return raw
	}
	if _, err := v.Verify(t.Context(), sign("good", jose.ES256, good)); err != nil {
		t.Errorf("good key refused: %v", err)
	}
	for _, kid := range []string{"mismatch", "enc"} {
		if _, err := v.Verify(t.Context(), sign(kid, jose.ES256, good)); !errors.Is(err, rp.ErrUnknownKey) {
			t.Errorf("kid %s: err = %v, want ErrUnknownKey", kid, err)
		}
	}
	if _, err := v.Verify(t.Context(), sign("small", jose.RS256, small)); !errors.Is(err, rp.ErrUnknownKey) {
		t.Errorf("1024-bit key: err = %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(t.Context(), sign("hmac", jose.HS256, []byte("secretsecretsecretsecretsecretsecret"))); !errors.Is(err, rp.ErrAlgorithm) {
		t.Errorf("HS256: err = %v, want ErrAlgorithm", err)
	}
}

// TestVerifyUsesContext: Verify heeds its context only where it waits.
// A token whose key is cached needs no fetch, so a cancelled context does
// not matter; a token naming an unknown key makes Verify fetch the JWKS,
// and a caller whose context ends stops waiting for that fetch at once
// (context.Canceled), while the fetch goes on and serves the next caller
// (one fetch for both).
func TestVerifyUsesContext(t *testing.T) {
	iss := rptest.NewIssuer(t)
	gate := &gatedTransport{next: iss.Client().Transport}
	gate.hold()
	gate.release()
	v := newVerifier(t, iss, rp.WithHTTPClient(&http.Client{Transport: gate}), rp.WithRefetchInterval(0))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := v.Verify(cancelled, iss.Token("u", testAudience, "")); err != nil {
		t.Fatalf("Verify with a cached key and a cancelled context: %v", err)
	}

	iss.Rotate(jose.ES256)
	token := iss.Token("u", testAudience, "")
	before := iss.JWKSFetches()
	gate.hold()
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(cancelled, token)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Verify of an unknown key with a cancelled context = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a Verify with a cancelled context still waits for the JWKS fetch")
	}
	gate.release()
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("Verify once the JWKS answers: %v", err)
	}
	if n := iss.JWKSFetches() - before; n != 1 {
		t.Errorf("%d JWKS fetches for the new key, want 1 (the cancelled caller's fetch serves the next)", n)
	}
}

// gatedTransport holds every request while held.
type gatedTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	open chan struct{}
}

func (g *gatedTransport) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *gatedTransport) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	<-open
	return g.next.RoundTrip(r)
}
