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

// goOIDCAcceptsAfterRotation is goOIDCAccepts for a token signed by a key
// go-oidc may not have fetched yet. Two fetches in quick succession race in
// go-oidc's RemoteKeySet (v3.21, jwks.go keysFromRemote): a caller can join
// a refetch that has already finished and get its stale keys, and callers
// are woken before the new keys are cached. Rotations are hours apart in
// production; here they are milliseconds apart, so the test retries,
// boundedly — go-oidc offers nothing to wait on.
func goOIDCAcceptsAfterRotation(t *testing.T, v *oidc.IDTokenVerifier, what, token, sub string) {
	t.Helper()
	var err error
	for range 200 {
		if _, err = v.Verify(t.Context(), token); err == nil {
			goOIDCAccepts(t, v, what, token, sub)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s: go-oidc still refuses it after two seconds: %v", what, err)
}

func goOIDCRefuses(t *testing.T, v *oidc.IDTokenVerifier, what, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, token); err == nil {
		t.Errorf("%s: go-oidc accepted it", what)
	}
}

// goOIDCRefusesAfterRefetch is goOIDCRefuses for a token whose key left the
// JWKS just before go-oidc refetched it: go-oidc wakes the callers of a
// refetch before it caches the new keys, so for a moment the old keys still
// verify (see goOIDCAcceptsAfterRotation). The test retries, boundedly.
func goOIDCRefusesAfterRefetch(t *testing.T, v *oidc.IDTokenVerifier, what, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for range 200 {
		if _, err := v.Verify(ctx, token); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s: go-oidc still accepts it two seconds after refetching the JWKS", what)
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
	goOIDCAcceptsAfterRotation(t, v, "new key B", tokenB, "bob")
	goOIDCAccepts(t, v, "key A, still published", tokenA, "alice")

	iss.Rotate(jose.RS256)
	iss.Remove(keyA)
	goOIDCAcceptsAfterRotation(t, v, "new key C", iss.Token("carol", apiAudience, ""), "carol")
	goOIDCRefusesAfterRefetch(t, v, "key A, removed from the JWKS", tokenA)
	goOIDCAccepts(t, v, "key B, still published", tokenB, "bob")
}
