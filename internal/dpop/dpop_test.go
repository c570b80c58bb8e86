package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	testURL   = "https://broker.example/oauth2/token"
	testToken = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"
)

var testNow = time.Unix(1_800_000_000, 0)

func mustEC(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSigner(t testing.TB, k *ecdsa.PrivateKey) *Signer {
	t.Helper()
	s, err := NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hs256(header, claims any, secret []byte) string {
	input := b64(header) + "." + b64(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func verifier() *Verifier {
	return &Verifier{Now: func() time.Time { return testNow }}
}

func TestVerifyAccepts(t *testing.T) {
	ec := mustEC(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rs, _ := NewSignerAlg(rk, jose.RS256)
	ps, _ := NewSigner(rk)
	eds, _ := NewSigner(ed)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	es384, _ := NewSigner(p384)
	es512, _ := NewSigner(p521)
	for name, s := range map[string]*Signer{"ES256": mustSigner(t, ec), "ES384": es384, "ES512": es512, "RS256": rs, "PS256": ps, "EdDSA": eds} {
		t.Run(name, func(t *testing.T) {
			proof, err := s.Proof("POST", testURL+"?x=1#f", ProofOptions{IssuedAt: testNow, AccessToken: testToken, Nonce: "n1"})
			if err != nil {
				t.Fatal(err)
			}
			p, err := verifier().Verify(context.Background(), proof, Request{Method: "POST", URL: "HTTPS://Broker.Example:443/oauth2/token", AccessToken: testToken, JKT: s.JKT()})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != s.JKT() || p.Nonce != "n1" || p.JTI == "" || !p.IssuedAt.Equal(testNow) {
				t.Fatalf("proof = %+v", p)
			}
		})
	}
}

// TestVerifyRefusesAbuse is every way a proof can be wrong, each refused
// with its reason and the RFC's code.
func TestVerifyRefusesAbuse(t *testing.T) {
	key := mustEC(t)
	s := mustSigner(t, key)
	other := mustSigner(t, mustEC(t))
	pub := &jose.JSONWebKey{Key: key.Public()}
	goodHeader := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pub}
	goodClaims := func() map[string]any {
		return map[string]any{"jti": "j1", "htm": "POST", "htu": testURL, "iat": testNow.Unix()}
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for a, b := range m {
			out[a] = b
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	raw := func(header, claims map[string]any) string {
		p, err := SignRaw(key, jose.ES256, header, claims)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := raw(goodHeader, goodClaims())
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	small, _ := SignRaw(rk, jose.RS256, map[string]any{"typ": "dpop+jwt", "alg": "RS256", "jwk": &jose.JSONWebKey{Key: rk.Public()}}, goodClaims())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	otherProof, _ := other.Proof("POST", testURL, ProofOptions{IssuedAt: testNow})
	parts := strings.Split(good, ".")

	cases := []struct {
		name   string
		proof  string
		req    Request
		reason error
	}{
		{"empty", "", Request{}, ErrMissing},
		{"alg none", b64(with(goodHeader, "alg", "none")) + "." + b64(goodClaims()) + ".", Request{}, ErrAlgorithm},
		{"HS256", hs256(with(goodHeader, "alg", "HS256"), goodClaims(), []byte("secretsecretsecretsecretsecret12")), Request{}, ErrAlgorithm},
		{"HS256 with oct jwk", hs256(with(goodHeader, "alg", "HS256"), goodClaims(), []byte("k")), Request{}, ErrAlgorithm},
		{"private jwk", raw(with(goodHeader, "jwk", &jose.JSONWebKey{Key: key}), goodClaims()), Request{}, ErrPrivateKey},
		{"oct jwk", raw(with(goodHeader, "jwk", map[string]string{"kty": "oct", "k": "c2VjcmV0"}), goodClaims()), Request{}, ErrPrivateKey},
		{"no jwk", raw(with(goodHeader, "jwk", nil), goodClaims()), Request{}, ErrKey},
		{"jwk of another curve", raw(with(goodHeader, "jwk", &jose.JSONWebKey{Key: p384.Public()}), goodClaims()), Request{}, ErrKey},
		{"RSA 1024", small, Request{}, ErrKey},
		{"jwk of another key", raw(with(goodHeader, "jwk", &jose.JSONWebKey{Key: other.key.Public()}), goodClaims()), Request{}, ErrSignature},
		{"bad typ", raw(with(goodHeader, "typ", "JWT"), goodClaims()), Request{}, ErrType},
		{"no typ", raw(with(goodHeader, "typ", nil), goodClaims()), Request{}, ErrType},
		{"tampered payload", parts[0] + "." + b64(with(goodClaims(), "htm", "GET")) + "." + parts[2], Request{}, ErrSignature},
		{"two parts", parts[0] + "." + parts[1], Request{}, ErrMalformed},
		{"four parts", good + ".x", Request{}, ErrMalformed},
		{"header not base64", "!!." + parts[1] + "." + parts[2], Request{}, ErrMalformed},
		{"header not json", base64.RawURLEncoding.EncodeToString([]byte("[1")) + "." + parts[1] + "." + parts[2], Request{}, ErrMalformed},
		{"too long", strings.Repeat("a", MaxProofBytes+1), Request{}, ErrMalformed},
		{"no jti", raw(goodHeader, with(goodClaims(), "jti", nil)), Request{}, ErrClaims},
		{"no iat", raw(goodHeader, with(goodClaims(), "iat", nil)), Request{}, ErrClaims},
		{"iat a string", raw(goodHeader, with(goodClaims(), "iat", "now")), Request{}, ErrClaims},
		{"jti a number", raw(goodHeader, with(goodClaims(), "jti", 7)), Request{}, ErrClaims},
		{"huge jti", raw(goodHeader, with(goodClaims(), "jti", strings.Repeat("j", 300))), Request{}, ErrClaims},
		{"wrong htm", raw(goodHeader, with(goodClaims(), "htm", "GET")), Request{}, ErrMethod},
		{"lower-case htm", raw(goodHeader, with(goodClaims(), "htm", "post")), Request{}, ErrMethod},
		{"wrong htu path", raw(goodHeader, with(goodClaims(), "htu", "https://broker.example/userinfo")), Request{}, ErrURL},
		{"wrong htu host", raw(goodHeader, with(goodClaims(), "htu", "https://evil.example/oauth2/token")), Request{}, ErrURL},
		{"wrong htu scheme", raw(goodHeader, with(goodClaims(), "htu", "http://broker.example/oauth2/token")), Request{}, ErrURL},
		{"wrong htu port", raw(goodHeader, with(goodClaims(), "htu", "https://broker.example:8443/oauth2/token")), Request{}, ErrURL},
		{"relative htu", raw(goodHeader, with(goodClaims(), "htu", "/oauth2/token")), Request{}, ErrURL},
		{"old iat", raw(goodHeader, with(goodClaims(), "iat", testNow.Add(-DefaultMaxAge-time.Second).Unix())), Request{}, ErrIssuedAt},
		{"future iat", raw(goodHeader, with(goodClaims(), "iat", testNow.Add(DefaultLeeway+time.Second).Unix())), Request{}, ErrIssuedAt},
		{"negative iat", raw(goodHeader, with(goodClaims(), "iat", -1)), Request{}, ErrClaims},
		{"no ath with token", good, Request{AccessToken: testToken}, ErrTokenHash},
		{"wrong ath", raw(goodHeader, with(goodClaims(), "ath", AccessTokenHash("other"))), Request{AccessToken: testToken}, ErrTokenHash},
		{"other key than bound", otherProof, Request{JKT: s.JKT()}, ErrKeyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req
			if req.Method == "" {
				req.Method = "POST"
			}
			if req.URL == "" {
				req.URL = testURL
			}
			p, err := verifier().Verify(context.Background(), c.proof, req)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if !errors.Is(err, c.reason) {
				t.Fatalf("err = %v, want %v", err, c.reason)
			}
			if Code(err) != CodeInvalidProof {
				t.Fatalf("code = %q, want %q", Code(err), CodeInvalidProof)
			}
		})
	}
	// The good proof passes the same verifier, so each refusal above is
	// the one change made to it.
	if _, err := verifier().Verify(context.Background(), good, Request{Method: "POST", URL: testURL}); err != nil {
		t.Fatalf("good proof: %v", err)
	}
	// The window's edges: a client clock ahead within the leeway, a
	// proof just under the maximum age.
	for _, iat := range []time.Time{testNow.Add(DefaultLeeway - time.Second), testNow.Add(-DefaultMaxAge + time.Second)} {
		p := raw(goodHeader, with(goodClaims(), "iat", iat.Unix()))
		if _, err := verifier().Verify(context.Background(), p, Request{Method: "POST", URL: testURL}); err != nil {
			t.Fatalf("iat %v from now: %v", iat.Sub(testNow), err)
		}
	}
}

func TestVerifyReplay(t *testing.T) {
	s := mustSigner(t, mustEC(t))
	now := testNow
	cache := NewMemoryReplayCache(10)
	cache.Now = func() time.Time { return now }
	v := &Verifier{Now: func() time.Time { return now }, Replay: cache}
	proof, _ := s.Proof("POST", testURL, ProofOptions{IssuedAt: testNow, JTI: "same"})
	req := Request{Method: "POST", URL: testURL}
	if _, err := v.Verify(context.Background(), proof, req); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(context.Background(), proof, req)
	if !errors.Is(err, ErrReplay) || Code(err) != CodeInvalidProof {
		t.Fatalf("replay: err = %v", err)
	}
	// Another key may use the same jti: the replay key is per key.
	o, _ := mustSigner(t, mustEC(t)).Proof("POST", testURL, ProofOptions{IssuedAt: testNow, JTI: "same"})
	if _, err := v.Verify(context.Background(), o, req); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}
	// Once the window is over the proof is refused for its iat, and the
	// cache may forget it.
	now = now.Add(DefaultMaxAge + 2*time.Second)
	if _, err := v.Verify(context.Background(), proof, req); !errors.Is(err, ErrIssuedAt) {
		t.Fatalf("after window: %v", err)
	}
}

func TestMemoryReplayCacheBounded(t *testing.T) {
	now := testNow
	c := NewMemoryReplayCache(2)
	c.Now = func() time.Time { return now }
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		if err := c.Claim(ctx, k, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Claim(ctx, "c", now.Add(time.Minute)); !errors.Is(err, ErrCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	if err := c.Claim(ctx, "a", now.Add(time.Minute)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay in a full cache: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if err := c.Claim(ctx, "c", now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestVerifyNonce(t *testing.T) {
	s := mustSigner(t, mustEC(t))
	now := testNow
	n := NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	n.Now = func() time.Time { return now }
	v := &Verifier{Now: func() time.Time { return now }, Nonce: n.Check}
	req := Request{Method: "POST", URL: testURL}
	for name, nonce := range map[string]string{"none": "", "forged": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "garbage": "x"} {
		p, _ := s.Proof("POST", testURL, ProofOptions{IssuedAt: now, Nonce: nonce})
		_, err := v.Verify(context.Background(), p, req)
		if !errors.Is(err, ErrNonce) || Code(err) != CodeUseNonce {
			t.Fatalf("%s nonce: err = %v", name, err)
		}
	}
	current := n.Current()
	p, _ := s.Proof("POST", testURL, ProofOptions{IssuedAt: now, Nonce: current})
	if _, err := v.Verify(context.Background(), p, req); err != nil {
		t.Fatalf("current nonce: %v", err)
	}
	// Another replica with the same secret accepts it; one with another
	// secret does not.
	replica := NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	replica.Now = n.Now
	if !replica.Valid(current) || replica.Current() != current {
		t.Fatal("a replica with the same secret disagrees")
	}
	other := NewNonces([]byte("another secret, another deployment"), time.Minute)
	other.Now = n.Now
	if other.Valid(current) {
		t.Fatal("nonce valid under another secret")
	}
	now = now.Add(time.Minute)
	if !n.Valid(current) {
		t.Fatal("nonce of the previous window refused")
	}
	now = now.Add(time.Minute)
	if n.Valid(current) {
		t.Fatal("nonce two windows old accepted")
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://Broker.Example/oauth2/token?a=b#c": "https://broker.example/oauth2/token",
		"HTTPS://broker.example:443/x":              "https://broker.example/x",
		"http://127.0.0.1:80":                       "http://127.0.0.1/",
		"http://127.0.0.1:8080/x":                   "http://127.0.0.1:8080/x",
		"http://[::1]:80/y":                         "http://[::1]/y",
		"https://h.example/a%2Fb":                   "https://h.example/a%2Fb",
	} {
		got, err := NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/path", "ftp://h/x", "https://user@h/x", "mailto:x@y", "https://h/%zz"} {
		if got, err := NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) = %q, want error", bad, got)
		}
	}
}

func TestFromHeader(t *testing.T) {
	h := make(map[string][]string)
	if _, err := FromHeader(h); !errors.Is(err, ErrMissing) {
		t.Fatalf("missing: %v", err)
	}
	h["Dpop"] = []string{"a", "b"}
	if _, err := FromHeader(h); !errors.Is(err, ErrMultiple) || Code(err) != CodeInvalidProof {
		t.Fatalf("multiple: %v", err)
	}
	h["Dpop"] = []string{" a "}
	if v, err := FromHeader(h); err != nil || v != "a" {
		t.Fatalf("one: %q %v", v, err)
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// The example of RFC 7638 §3.1.
	const n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	k := &jose.JSONWebKey{}
	if err := k.UnmarshalJSON([]byte(`{"kty":"RSA","n":"` + n + `","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(k)
	if err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("Thumbprint = %q, %v", got, err)
	}
}

func TestAllowedAlgorithmsDropsSymmetric(t *testing.T) {
	v := &Verifier{Algorithms: []jose.SignatureAlgorithm{jose.HS256, "none", jose.ES256}}
	if got := v.AllowedAlgorithms(); len(got) != 1 || got[0] != "ES256" {
		t.Fatalf("AllowedAlgorithms = %v", got)
	}
}

func FuzzVerify(f *testing.F) {
	// A fixed key: the fuzzing workers rebuild this setup, and a seed
	// signed in one process must verify in another.
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	s := mustSigner(f, k)
	good, _ := s.Proof("POST", testURL, ProofOptions{IssuedAt: testNow, AccessToken: testToken})
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(b64(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": map[string]any{"kty": "EC", "crv": "P-256", "x": 1}}) + ".e30.")
	v := verifier()
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := v.Verify(context.Background(), proof, Request{Method: "POST", URL: testURL, AccessToken: testToken})
		if err == nil {
			if p.JKT != s.JKT() {
				t.Fatalf("accepted a proof from another key: %q", proof)
			}
			return
		}
		if Code(err) == "" {
			t.Fatalf("error without an RFC code: %v", err)
		}
	})
}

func BenchmarkVerifyES256(b *testing.B) {
	s := mustSigner(b, mustEC(b))
	proof, _ := s.Proof("POST", testURL, ProofOptions{IssuedAt: testNow, AccessToken: testToken})
	v := verifier()
	req := Request{Method: "POST", URL: testURL, AccessToken: testToken}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), proof, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256Floor is the bare signature check a proof cannot avoid, to
// read BenchmarkVerifyES256 against.
func BenchmarkES256Floor(b *testing.B) {
	k := mustEC(b)
	sum := sha256.Sum256([]byte("header.payload"))
	r, s, _ := ecdsa.Sign(rand.Reader, k, sum[:])
	for b.Loop() {
		if !ecdsa.Verify(&k.PublicKey, sum[:], r, s) {
			b.Fatal("verify")
		}
	}
}
