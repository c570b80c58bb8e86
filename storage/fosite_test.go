package storage_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// fositeRig is a fosite provider composed on a store, as the broker does.
type fositeRig struct {
	store    *storage.Store
	tokens   *storage.TokenStore // what fosite is given
	provider fosite.OAuth2Provider
	strategy compose.CommonStrategy
}

const (
	rigRedirect = "http://127.0.0.1:9999/cb"
	rigVerifier = "a-code-verifier-that-is-long-enough-to-be-valid-0123456789"
)

func newFositeRig(t testing.TB, b storagetest.Backend) *fositeRig {
	t.Helper()
	s, _ := b.Open(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &fosite.Config{
		GlobalSecret:                   []byte("a-global-secret-of-32-bytes-long"),
		IDTokenIssuer:                  "http://127.0.0.1:9999",
		AccessTokenLifespan:            time.Hour,
		RefreshTokenLifespan:           24 * time.Hour,
		AuthorizeCodeLifespan:          time.Minute,
		IDTokenLifespan:                time.Hour,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
	}
	keyGetter := func(context.Context) (any, error) { return key, nil }
	strategy := compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, cfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: keyGetter},
	}
	tokens := s.TokenStore(storage.TokenStoreConfig{})
	provider := compose.Compose(cfg, tokens, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2PKCEFactory,
	)
	if err := s.CreateClient(context.Background(), &storage.Client{
		ID: "spa", Public: true, TokenEndpointAuthMethod: "none",
		RedirectURIs:  []string{rigRedirect},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "offline_access"},
	}); err != nil {
		t.Fatal(err)
	}
	return &fositeRig{store: s, tokens: tokens, provider: provider, strategy: strategy}
}

func newSessionFor(subject string) *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: subject, AuthTime: time.Now().UTC(), RequestedAt: time.Now().UTC()},
		Headers: &jwt.Headers{},
		Subject: subject,
	}
}

// authorize runs an authorization request for subject and returns the code.
func (r *fositeRig) authorize(t testing.TB, subject string) string {
	t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(rigVerifier))
	q := url.Values{
		"client_id": {"spa"}, "response_type": {"code"}, "redirect_uri": {rigRedirect},
		"scope": {"openid offline_access"}, "state": {"state-12345678"}, "nonce": {"nonce-12345678"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	ar, err := r.provider.NewAuthorizeRequest(ctx, httptest.NewRequest(http.MethodGet, "/oauth2/auth?"+q.Encode(), nil))
	if err != nil {
		t.Fatalf("NewAuthorizeRequest: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	ar.GrantScope("openid")
	ar.GrantScope("offline_access")
	var resp fosite.AuthorizeResponder
	err = r.store.InTx(ctx, func(ctx context.Context) error {
		resp, err = r.provider.NewAuthorizeResponse(ctx, ar, newSessionFor(subject))
		return err
	})
	if err != nil {
		t.Fatalf("NewAuthorizeResponse: %v", err)
	}
	return resp.GetParameters().Get("code")
}

// token posts a token request; it returns the response or the fosite error.
func (r *fositeRig) token(form url.Values) (fosite.AccessResponder, error) {
	ctx := context.Background()
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ar, err := r.provider.NewAccessRequest(ctx, req, newSessionFor(""))
	if err != nil {
		return nil, err
	}
	return r.provider.NewAccessResponse(ctx, ar)
}

// refreshInTx runs the refresh grant's response in one outer transaction.
func (r *fositeRig) refreshInTx(refreshToken string) (fosite.AccessResponder, error) {
	ctx := context.Background()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {"spa"}}
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ar, err := r.provider.NewAccessRequest(ctx, req, newSessionFor(""))
	if err != nil {
		return nil, err
	}
	var resp fosite.AccessResponder
	err = r.store.InTx(ctx, func(ctx context.Context) error {
		resp, err = r.provider.NewAccessResponse(ctx, ar)
		return err
	})
	return resp, err
}

func (r *fositeRig) exchange(code string) (fosite.AccessResponder, error) {
	return r.token(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rigRedirect},
		"client_id": {"spa"}, "code_verifier": {rigVerifier},
	})
}

func (r *fositeRig) refresh(refreshToken string) (fosite.AccessResponder, error) {
	return r.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {"spa"}})
}

// active reports whether fosite's introspection accepts an access token.
func (r *fositeRig) active(t *testing.T, accessToken string) bool {
	t.Helper()
	_, _, err := r.provider.IntrospectToken(context.Background(), accessToken, fosite.AccessToken, newSessionFor(""))
	return err == nil
}

func refreshTokenOf(t *testing.T, resp fosite.AccessResponder) string {
	t.Helper()
	rt, _ := resp.GetExtra("refresh_token").(string)
	if rt == "" {
		t.Fatal("no refresh token issued")
	}
	return rt
}

// TestFositeFlows drives a real fosite provider on every backend: code with
// PKCE, ID token, refresh rotation, reuse detection revoking the family,
// code replay revoking the tokens, and revocation.
func TestFositeFlows(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			r := newFositeRig(t, b)

			first, err := r.exchange(r.authorize(t, "user-1"))
			if err != nil {
				t.Fatalf("code exchange: %v", err)
			}
			if idt, _ := first.GetExtra("id_token").(string); idt == "" {
				t.Error("no ID token issued")
			}
			rt1 := refreshTokenOf(t, first)
			if !r.active(t, first.GetAccessToken()) {
				t.Fatal("fresh access token is not active")
			}

			second, err := r.refresh(rt1)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			rt2 := refreshTokenOf(t, second)
			if r.active(t, first.GetAccessToken()) {
				t.Error("the access token of a rotated refresh token is still active")
			}
			if !r.active(t, second.GetAccessToken()) {
				t.Error("the refreshed access token is not active")
			}

			// Reusing the rotated token revokes the whole family.
			if _, err := r.refresh(rt1); !errors.Is(err, fosite.ErrInvalidGrant) {
				t.Fatalf("reusing a rotated refresh token: %v, want invalid_grant", err)
			}
			if r.active(t, second.GetAccessToken()) {
				t.Error("after reuse, the family's access token is still active")
			}
			if _, err := r.refresh(rt2); err == nil {
				t.Error("after reuse, the family's newest refresh token still works")
			}

			// A replayed code fails and revokes what it issued.
			code := r.authorize(t, "user-2")
			third, err := r.exchange(code)
			if err != nil {
				t.Fatalf("second code exchange: %v", err)
			}
			if _, err := r.exchange(code); !errors.Is(err, fosite.ErrInvalidGrant) {
				t.Fatalf("replayed code: %v, want invalid_grant", err)
			}
			if r.active(t, third.GetAccessToken()) {
				t.Error("after code replay, the code's access token is still active")
			}
			if _, err := r.refresh(refreshTokenOf(t, third)); err == nil {
				t.Error("after code replay, the code's refresh token still works")
			}

			// Revoking a refresh token revokes its access token too.
			fourth, err := r.exchange(r.authorize(t, "user-3"))
			if err != nil {
				t.Fatalf("third code exchange: %v", err)
			}
			revoke := httptest.NewRequest(http.MethodPost, "/oauth2/revoke",
				strings.NewReader(url.Values{"token": {refreshTokenOf(t, fourth)}, "client_id": {"spa"}}.Encode()))
			revoke.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := r.provider.NewRevocationRequest(context.Background(), revoke); err != nil {
				t.Fatalf("revocation: %v", err)
			}
			if r.active(t, fourth.GetAccessToken()) {
				t.Error("after revoking the refresh token, its access token is still active")
			}
			if _, err := r.refresh(refreshTokenOf(t, fourth)); err == nil {
				t.Error("a revoked refresh token still works")
			}
		})
	}
}

// TestRotatedRefreshTokenSaysWhen: a rotated refresh token comes back as a
// *storage.RotatedError (a fosite.ErrInactiveToken) carrying the rotation
// time, which stays when its grant is revoked later; a token revoked
// without being rotated is plainly inactive.
func TestRotatedRefreshTokenSaysWhen(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			r := newFositeRig(t, b)
			ctx := context.Background()
			first, err := r.exchange(r.authorize(t, "user-1"))
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			second, err := r.refresh(refreshTokenOf(t, first))
			if err != nil {
				t.Fatal(err)
			}
			sig := func(resp fosite.AccessResponder) string {
				return r.strategy.RefreshTokenSignature(ctx, refreshTokenOf(t, resp))
			}
			req, err := r.tokens.GetRefreshTokenSession(ctx, sig(first), nil)
			var rot *storage.RotatedError
			if !errors.As(err, &rot) || !errors.Is(err, fosite.ErrInactiveToken) || req == nil {
				t.Fatalf("rotated token: %v %v, want a RotatedError with its request", req, err)
			}
			if d := rot.At.Sub(before); d < -time.Second || d > 5*time.Second {
				t.Errorf("rotated at %v, the refresh ran at %v", rot.At, before)
			}
			if err := r.tokens.RevokeRefreshToken(ctx, req.GetID()); err != nil {
				t.Fatal(err)
			}
			if _, err := r.tokens.GetRefreshTokenSession(ctx, sig(first), nil); !errors.As(err, &rot) {
				t.Errorf("rotated, then revoked: %v, want a RotatedError", err)
			}
			_, err = r.tokens.GetRefreshTokenSession(ctx, sig(second), nil)
			if !errors.Is(err, fosite.ErrInactiveToken) || errors.As(err, &rot) {
				t.Errorf("revoked, never rotated: %v, want inactive without a rotation time", err)
			}
		})
	}
}
