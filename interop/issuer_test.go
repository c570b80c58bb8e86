package interop

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

const apiAudience = "http://127.0.0.1:9090"

// TestAPIsVerifyIssuerTokens presents the same tokens, good and bad, to each
// API: they must agree on every one.
func TestAPIsVerifyIssuerTokens(t *testing.T) {
	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			iss := rptest.NewIssuer(t)
			base := kind.start(t, iss.URL, apiAudience)
			profile, checkout := base+"/api/profile", base+"/api/checkout"
			hour := time.Now().Add(time.Hour).Unix()

			expect(t, "valid token", profile, iss.Token("alice", apiAudience, "openid profile"), 200, "", "alice")
			expect(t, "no token", profile, "", 401, "unauthorized", "")
			expect(t, "not a JWT", profile, "not-a-jwt", 401, "invalid_token", "") // bad input is the token's fault, never a 503
			expect(t, "another API's token", profile, iss.Token("alice", "http://127.0.0.1:9999", "openid"), 401, "invalid_token", "")
			expect(t, "another issuer", profile, iss.Sign(rptest.Claims{"sub": "alice", "aud": apiAudience, "iss": "http://127.0.0.1:1"}), 401, "invalid_token", "")
			expect(t, "expired", profile, iss.Sign(rptest.Claims{"sub": "alice", "aud": apiAudience, "exp": time.Now().Add(-time.Hour).Unix()}), 401, "invalid_token", "")
			expect(t, "ID token (typ JWT)", profile, iss.SignWith(rptest.Claims{"sub": "alice", "aud": apiAudience},
				map[jose.HeaderKey]any{jose.HeaderType: "JWT"}), 401, "invalid_token", "")
			expect(t, "alg none", profile, unsigned(t, iss, map[string]any{"sub": "mallory", "aud": apiAudience, "exp": hour}), 401, "invalid_token", "")
			expect(t, "HS256 keyed with the public key", profile, hmacWithPublicKey(t, iss,
				map[string]any{"sub": "mallory", "aud": apiAudience, "exp": hour}), 401, "invalid_token", "")
			expect(t, "checkout without the scope", checkout, iss.Token("bob", apiAudience, "openid profile"), 403, "insufficient_scope", "")
			expect(t, "checkout with the scope", checkout, iss.Token("bob", apiAudience, "openid checkout"), 200, "", "bob")
		})
	}
}

// TestKeyRotationWhileAPIsRun rotates the issuer's keys under running APIs:
// a token signed by a new key is accepted without a restart, and a token
// signed by a key that left the JWKS is refused.
func TestKeyRotationWhileAPIsRun(t *testing.T) {
	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			iss := rptest.NewIssuer(t)
			base := kind.start(t, iss.URL, apiAudience)
			profile := base + "/api/profile"
			keyA := iss.SigningKeyID()
			tokenA := iss.Token("alice", apiAudience, "")
			expect(t, "key A", profile, tokenA, 200, "", "alice")

			// Rotation 1: key B (ES256) signs; A stays published.
			iss.Rotate(jose.ES256)
			tokenB := iss.Token("bob", apiAudience, "")
			expectNewKey(t, kind, "new key B, no restart", profile, tokenB, "bob")
			expect(t, "key A, still published", profile, tokenA, 200, "", "alice")

			// Rotation 2: key C (RS256) signs; A leaves the JWKS.
			iss.Rotate(jose.RS256)
			iss.Remove(keyA)
			tokenC := iss.Token("carol", apiAudience, "")
			expectNewKey(t, kind, "new key C, no restart", profile, tokenC, "carol")
			expect(t, "key A, removed from the JWKS", profile, tokenA, 401, "invalid_token", "")
			expect(t, "key B, still published", profile, tokenB, 200, "", "bob")
		})
	}
}

// unsigned is an "alg":"none" token naming the issuer's current key.
func unsigned(t *testing.T, iss *rptest.Issuer, claims map[string]any) string {
	t.Helper()
	claims["iss"] = iss.URL
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "at+jwt", "kid": iss.SigningKeyID()})
	payload, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

// hmacWithPublicKey signs with HS256, using the issuer's public key (PEM) as
// the HMAC secret — the classic algorithm-confusion attack.
func hmacWithPublicKey(t *testing.T, iss *rptest.Issuer, claims map[string]any) string {
	t.Helper()
	kid := iss.SigningKeyID()
	der, err := x509.MarshalPKIXPublicKey(iss.PrivateKey(kid).Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	claims["iss"] = iss.URL
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// TestAPIsWhenIssuerIsDown stops the issuer's JWKS under running APIs: tokens
// of cached keys keep working, and a token of a key the API must fetch is
// answered 503 temporarily_unavailable with a real description — not a 401
// blaming the token (the Node snippet used to say error_description="undefined").
func TestAPIsWhenIssuerIsDown(t *testing.T) {
	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			if !kind.downIs503 {
				t.Skip("PyJWT 2.6 reports an unreachable JWKS as a bad token (401)")
			}
			iss := rptest.NewIssuer(t)
			profile := kind.start(t, iss.URL, apiAudience) + "/api/profile"
			tokenA := iss.Token("alice", apiAudience, "")
			expect(t, "key A", profile, tokenA, 200, "", "alice")

			iss.SetDown(true)
			expect(t, "key A, cached, issuer down", profile, tokenA, 200, "", "alice")
			iss.Rotate(jose.ES256)
			tokenB := iss.Token("bob", apiAudience, "")
			// Inside the API's refetch rate limit the unknown key is a 401;
			// once it may fetch, the failed fetch is a 503.
			deadline := time.Now().Add(kind.newKeyDelay + 5*time.Second)
			r := call(t, http.MethodGet, profile, tokenB)
			for r.Status == http.StatusUnauthorized && time.Now().Before(deadline) {
				time.Sleep(250 * time.Millisecond)
				r = call(t, http.MethodGet, profile, tokenB)
			}
			if r.Status != http.StatusServiceUnavailable || r.Error != "temporarily_unavailable" ||
				r.Description == "" || strings.Contains(r.Description, "undefined") || strings.Contains(r.Challenge, "undefined") {
				t.Fatalf("new key while the JWKS is down: %d error=%q error_description=%q (WWW-Authenticate %q), want 503 temporarily_unavailable",
					r.Status, r.Error, r.Description, r.Challenge)
			}

			iss.SetDown(false)
			expectNewKey(t, kind, "new key B, issuer back", profile, tokenB, "bob")
		})
	}
}
