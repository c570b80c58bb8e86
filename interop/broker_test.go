package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv/brokerenv"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

const (
	backendSecret = "backend-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	otherAudience = "http://127.0.0.1:9999"
)

// keyClock is the key manager's clock: a test moves it forward to make a
// retired key reach its removal time. Token lifetimes keep real time.
type keyClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *keyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *keyClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// realBroker is a Bridgekeeper broker served over HTTP on 127.0.0.1, on
// SQLite, with three confidential clients: "backend" (default audience the
// demo API), "other" (default audience another API) and the demo API itself
// (client id apiAudience).
type realBroker struct {
	issuer string
	keys   *keys.Manager
	clock  *keyClock
}

func startBroker(t *testing.T, algorithm string) *realBroker {
	t.Helper()
	clock := &keyClock{}
	tb := brokerenv.Start(t, brokerenv.Options{
		Secret: "aW50ZXJvcC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZjAx",
		Keys: keys.Options{
			Algorithm:      algorithm,
			RotationPeriod: -1, // the test rotates
			Now:            clock.Now,
		},
	})
	// The demo API is a client too, with its audience as its id, so that it
	// may introspect the tokens minted for it (TestRevokedTokenOfflineAndIntrospected).
	for id, aud := range map[string]string{"backend": apiAudience, "other": otherAudience, apiAudience: apiAudience} {
		tb.CreateClient(t, &storage.Client{
			ID: id, Name: id, TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"},
			Scopes: []string{"profile", "checkout"}, Audiences: []string{aud}, DefaultAudiences: []string{aud},
		}, backendSecret)
	}
	return &realBroker{issuer: tb.Issuer, keys: tb.Keys, clock: clock}
}

// token gets an access token with the client_credentials grant.
func (b *realBroker) token(t *testing.T, clientID, scope string) string {
	t.Helper()
	token, _ := b.requestToken(t, clientID, scope, "")
	return token
}

// requestToken asks for a client_credentials token, with a DPoP proof when
// proof is not empty, and returns it and its token_type.
func (b *realBroker) requestToken(t *testing.T, clientID, scope, proof string) (token, tokenType string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	req.SetBasicAuth(clientID, backendSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token for %s: %d %+v %v", clientID, resp.StatusCode, body, err)
	}
	return body.AccessToken, body.TokenType
}

// TestAPIsVerifyBrokerTokens: tokens from a real broker, RS256 and ES256,
// checked by each API and by go-oidc.
func TestAPIsVerifyBrokerTokens(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			b := startBroker(t, alg)
			shopper := b.token(t, "backend", "profile checkout")
			browser := b.token(t, "backend", "profile")
			foreign := b.token(t, "other", "profile checkout")

			for _, kind := range apiKinds {
				t.Run(kind.name, func(t *testing.T) {
					base := kind.start(t, b.issuer, apiAudience)
					expect(t, "profile", base+"/api/profile", browser, 200, "", "backend")
					expect(t, "checkout without the scope", base+"/api/checkout", browser, 403, "insufficient_scope", "")
					expect(t, "checkout with the scope", base+"/api/checkout", shopper, 200, "", "backend")
					expect(t, "token for another API", base+"/api/profile", foreign, 401, "invalid_token", "")
				})
			}
			t.Run("go-oidc", func(t *testing.T) {
				v := goOIDCVerifier(t, b.issuer, apiAudience)
				goOIDCAccepts(t, v, "broker token", shopper, "backend")
				goOIDCRefuses(t, v, "token for another API", foreign)
			})
		})
	}
}

// TestBrokerKeyRotationWhileAPIsRun rotates a real broker's keys twice
// while an API runs, and lets the first key pass its removal time: tokens of
// the new keys are accepted without a restart, tokens of the removed key are
// refused. go-oidc goes through the same steps.
func TestBrokerKeyRotationWhileAPIsRun(t *testing.T) {
	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := startBroker(t, "RS256")
			profile := kind.start(t, b.issuer, apiAudience) + "/api/profile"
			b.rotationSteps(t,
				func(what, token string) { expect(t, what, profile, token, 200, "", "backend") },
				func(what, token string) { expectNewKey(t, kind, what, profile, token, "backend") },
				func(what, token string) { expect(t, what, profile, token, 401, "invalid_token", "") })
		})
	}
	t.Run("go-oidc", func(t *testing.T) {
		b := startBroker(t, "RS256")
		v := goOIDCVerifier(t, b.issuer, apiAudience)
		b.rotationSteps(t,
			func(what, token string) { goOIDCAcceptsAfterRotation(t, v, what, token, "backend") },
			func(what, token string) { goOIDCAcceptsAfterRotation(t, v, what, token, "backend") },
			func(what, token string) { goOIDCRefusesAfterRefetch(t, v, what, token) })
	})
}

// rotationSteps: key A signs; rotation 1 (the published next key B signs);
// A reaches its removal time and leaves the JWKS; rotation 2 (C signs: it
// was published at rotation 1, maybe after the API's last fetch, so it is
// checked with acceptNew, which allows for the API's refetch rate limit).
func (b *realBroker) rotationSteps(t *testing.T, accept, acceptNew, refuse func(what, token string)) {
	ctx := t.Context()
	tokenA := b.token(t, "backend", "profile")
	accept("key A", tokenA)

	if err := b.keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tokenB := b.token(t, "backend", "profile")
	if kid(t, tokenB) == kid(t, tokenA) {
		t.Fatal("rotation did not change the signing key")
	}
	accept("key B after rotation 1", tokenB)
	accept("key A, retired but still published", tokenA)

	b.clock.Advance(broker.MaxTokenLifetime(broker.Config{}) + 24*time.Hour)
	if err := b.keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tokenC := b.token(t, "backend", "profile")
	acceptNew("key C after rotation 2", tokenC)
	refuse("key A, removed from the JWKS", tokenA)
	accept("key B, retired but still published", tokenB)
}

// kid returns the key ID in a token's header.
func kid(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// post sends a form to the broker, authenticated as clientID, and decodes
// the JSON answer.
func (b *realBroker) post(t *testing.T, path, clientID string, form url.Values) (int, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(backendSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, body
}

// TestRevokedTokenOfflineAndIntrospected is docs/rp.md's "Revocation"
// section: an API that verifies offline accepts a revoked access token until
// it expires; introspection by the API (a client whose id the token's aud
// names) says at once that it is no longer active; a client the token is not
// for learns nothing about it.
func TestRevokedTokenOfflineAndIntrospected(t *testing.T) {
	b := startBroker(t, "RS256")
	profile := startGoAPI(t, b.issuer, apiAudience) + "/api/profile"
	token := b.token(t, "backend", "profile")
	introspect := func(clientID string) any {
		status, body := b.post(t, "/oauth2/introspect", clientID, url.Values{"token": {token}})
		if status != http.StatusOK {
			t.Fatalf("introspection by %s: %d %v", clientID, status, body)
		}
		return body["active"]
	}

	expect(t, "token before revocation", profile, token, 200, "", "backend")
	if active := introspect(apiAudience); active != true {
		t.Fatalf("introspection by the API before revocation: active=%v, want true", active)
	}
	if active := introspect("other"); active != false {
		t.Fatalf("introspection by a client the token is not for: active=%v, want false", active)
	}

	if status, body := b.post(t, "/oauth2/revoke", "backend", url.Values{"token": {token}}); status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}
	expect(t, "revoked token, verified offline", profile, token, 200, "", "backend")
	if active := introspect(apiAudience); active != false {
		t.Fatalf("introspection by the API after revocation: active=%v, want false", active)
	}
}
