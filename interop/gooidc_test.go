package interop

import (
	"context"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// goOIDCVerifier is how a Go service using coreos/go-oidc checks tokens:
// discovery, remote key set, audience as "client ID".
func goOIDCVerifier(t *testing.T, issuer, audience string) *oidc.IDTokenVerifier {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	return provider.Verifier(&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256}})
}

func goOIDCAccepts(t *testing.T, v *oidc.IDTokenVerifier, what, token, sub string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tok, err := v.Verify(ctx, token)
	if err != nil {
		t.Errorf("%s: go-oidc refused: %v", what, err)
		return
	}
	if tok.Subject != sub {
		t.Errorf("%s: subject %q, want %q", what, tok.Subject, sub)
	}
}

func goOIDCRefuses(t *testing.T, v *oidc.IDTokenVerifier, what, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, token); err == nil {
		t.Errorf("%s: go-oidc accepted it", what)
	}
}

func TestGoOIDCVerifiesIssuerTokens(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := goOIDCVerifier(t, iss.URL, apiAudience)
	hour := time.Now().Add(time.Hour).Unix()
	goOIDCAccepts(t, v, "valid token", iss.Token("alice", apiAudience, "openid"), "alice")
	goOIDCRefuses(t, v, "another API's token", iss.Token("alice", "http://127.0.0.1:9999", "openid"))
	goOIDCRefuses(t, v, "another issuer", iss.Sign(rptest.Claims{"sub": "alice", "aud": apiAudience, "iss": "http://127.0.0.1:1"}))
	goOIDCRefuses(t, v, "expired", iss.Sign(rptest.Claims{"sub": "alice", "aud": apiAudience, "exp": time.Now().Add(-time.Hour).Unix()}))
	goOIDCRefuses(t, v, "alg none", unsigned(t, iss, map[string]any{"sub": "mallory", "aud": apiAudience, "exp": hour}))
	goOIDCRefuses(t, v, "HS256 keyed with the public key", hmacWithPublicKey(t, iss, map[string]any{"sub": "mallory", "aud": apiAudience, "exp": hour}))
	// go-oidc is an ID-token verifier: it does not look at typ, so an API
	// using it must check "at+jwt" itself (rp does).
}

func TestGoOIDCKeyRotation(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := goOIDCVerifier(t, iss.URL, apiAudience)
	keyA := iss.SigningKeyID()
	tokenA := iss.Token("alice", apiAudience, "")
	goOIDCAccepts(t, v, "key A", tokenA, "alice")

	iss.Rotate(jose.ES256)
	tokenB := iss.Token("bob", apiAudience, "")
	goOIDCAccepts(t, v, "new key B", tokenB, "bob")
	goOIDCAccepts(t, v, "key A, still published", tokenA, "alice")

	iss.Rotate(jose.RS256)
	iss.Remove(keyA)
	goOIDCAccepts(t, v, "new key C", iss.Token("carol", apiAudience, ""), "carol")
	goOIDCRefuses(t, v, "key A, removed from the JWKS", tokenA)
	goOIDCAccepts(t, v, "key B, still published", tokenB, "bob")
}
