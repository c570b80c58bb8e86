package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// tokenStore is what the broker's handlers use of the token store
// (storage.TokenStore, which fosite is handed whole): units of work that
// apply a request's writes together.
type tokenStore interface {
	WithUnit(ctx context.Context) (unit context.Context, end func())
	Record(ctx context.Context, op func(ctx context.Context) error) error
	Run(ctx context.Context, fn func(ctx context.Context) error) error
}

// clientCacheTTL is how long a client loaded for fosite is reused: every
// token request authenticates its client, and the client rarely changes.
// A changed, deleted or re-keyed client takes effect on each replica
// within this time.
const clientCacheTTL = 5 * time.Second

// newProvider composes fosite by hand with exactly the grants the broker
// supports (no implicit, hybrid, password, RFC 7523 or PAR), on a token
// store it makes from cfg.Store.
func newProvider(cfg Config, check *atomic.Pointer[RefreshCheck], endIdentity func(ctx context.Context, userID, idp, subject string) error) (*fosite.Fosite, tokenStore) {
	fcfg := &fosite.Config{
		IDTokenIssuer:         cfg.Issuer,
		AccessTokenIssuer:     cfg.Issuer,
		TokenURL:              cfg.Issuer + pathToken,
		AccessTokenLifespan:   cfg.AccessTokenLifetime,
		RefreshTokenLifespan:  cfg.RefreshTokenLifetime,
		AuthorizeCodeLifespan: cfg.AuthorizeCodeLifetime,
		IDTokenLifespan:       cfg.IDTokenLifetime,
		GlobalSecret:          cfg.Secret.Derive(secret.PurposeTokenHMAC),
		ClientSecretsHasher:   &password.ClientSecretHasher{Key: cfg.Secret.Derive(secret.PurposeClientSecret)},
		ScopeStrategy:         fosite.ExactScopeStrategy,
		// Audiences (RFC 8707 resources) match exactly; a miss is invalid_target.
		AudienceMatchingStrategy: exactAudience,
		// PKCE: required for public clients, S256 only. A missing method
		// counts as plain and is refused.
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     false,
		RefreshTokenScopes:             []string{"offline_access", "offline"},
		JWTScopeClaimKey:               jwt.JWTScopeFieldString, // RFC 9068: scope is a space-separated string
		// consent and select_account pass fosite's check so that
		// validateEarly refuses them with OpenID Connect's errors.
		AllowedPromptValues:  []string{"login", "none", "consent", "select_account"},
		FormPostHTMLTemplate: formPostTemplate(cfg.Issuer),
	}

	keyGetter := func(context.Context) (any, error) {
		k := cfg.Keys.SigningKey()
		if k == nil {
			return nil, errors.New("no signing key")
		}
		return k, nil
	}
	signer := newKidSigner(cfg.Keys)
	enigma := &hmac.HMACStrategy{Config: fcfg}
	hmacStrategy := oauth2.NewHMACSHAStrategyUnPrefixed(enigma, fcfg)
	jwtStrategy := compose.NewOAuth2JWTStrategy(keyGetter, hmacStrategy, fcfg)
	jwtStrategy.Signer = signer
	store := cfg.Store.TokenStore(storage.TokenStoreConfig{
		CodeSignature: func(code string) string { return jwtStrategy.AuthorizeCodeSignature(context.Background(), code) },
		// A spent code or refresh token counts as a replay (which revokes
		// its grant) only when authentic (replay.go).
		Authentic:      enigma.Validate,
		ReuseGrace:     cfg.RefreshReuseGrace,
		ClientCacheTTL: clientCacheTTL,
	})
	oidcStrategy := compose.NewOpenIDConnectStrategy(keyGetter, fcfg)
	oidcStrategy.Signer = signer

	strategy := &compose.CommonStrategy{
		CoreStrategy:               forgedRefreshAnswer{jwtStrategy},
		OpenIDConnectTokenStrategy: oidcStrategy,
		Signer:                     signer,
	}
	provider := compose.Compose(fcfg, store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2PKCEFactory,
	)
	// fosite's handlers only: each one's Populate starts with the check
	// unhandledSkipped makes (ours may answer for any grant).
	skipUnhandled(fcfg.TokenEndpointHandlers)
	for i, h := range fcfg.RevocationHandlers {
		fcfg.RevocationHandlers[i] = &authenticRevocation{next: h, hmac: enigma, signer: signer}
	}
	// After fosite's refresh handler has restored the grant's session: the
	// DPoP binding (dpop.go) first, so a request from the wrong key changes
	// nothing; then the scope, so the user check builds the ID token for the
	// narrowed one.
	fcfg.TokenEndpointHandlers.Append(dpopBinding{})
	fcfg.TokenEndpointHandlers.Append(refreshScope{})
	fcfg.TokenEndpointHandlers.Append(&refreshUserCheck{users: cfg.Store, tokens: store, check: check, endIdentity: endIdentity})
	fcfg.TokenEndpointHandlers.Append(codeUserCheck{users: cfg.Store})
	return provider.(*fosite.Fosite), store
}

// refreshUserCheck is a token endpoint handler for the refresh grant: the
// grant's user must still exist and be active and enabled (whatever
// happened to their tokens), and the refreshed ID token carries the user's
// current profile and e-mail claims.
type refreshUserCheck struct {
	users  userReader
	tokens interface {
		RevokeRefreshToken(ctx context.Context, requestID string) error
		RevokeAccessToken(ctx context.Context, requestID string) error
	}
	check *atomic.Pointer[RefreshCheck] // the upstream re-check, if any
	// endIdentity ends the sessions and grants of an upstream identity
	// the re-check found revoked (Server.EndUpstreamIdentity).
	endIdentity func(ctx context.Context, userID, idp, subject string) error
}

func (h *refreshUserCheck) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := req.GetSession().(*session)
	if !ok || sess.Subject == "" {
		return fosite.ErrServerError.WithDebug("refresh: unexpected session")
	}
	u, err := grantUser(ctx, h.users, sess.Subject)
	if err != nil {
		return err
	}
	idp, _ := sess.IDTokenClaims().Extra["idp"].(string)
	if check := h.check.Load(); check != nil && *check != nil {
		if err := (*check)(ctx, u.ID, idp); errors.Is(err, connectors.ErrIdentityRevoked) {
			// The upstream identity is gone for good: end the whole grant,
			// not just this request, and every broker session and other
			// grant that came from that identity.
			if rerr := errors.Join(h.tokens.RevokeRefreshToken(ctx, req.GetID()), h.tokens.RevokeAccessToken(ctx, req.GetID())); rerr != nil {
				return fosite.ErrServerError.WithWrap(rerr).WithDebug(rerr.Error())
			}
			if idp != "" && idp != "local" && h.endIdentity != nil {
				if rerr := h.endIdentity(ctx, u.ID, idp, sess.IDPSubject); rerr != nil {
					return fosite.ErrServerError.WithWrap(rerr).WithDebug(rerr.Error())
				}
			}
			return fosite.ErrInvalidGrant.WithHint("The user's identity provider no longer accepts this user.")
		} else if err != nil {
			return fosite.ErrTemporarilyUnavailable.WithHint("The user's identity provider could not be reached; try again later.").WithWrap(err).WithDebug(err.Error())
		}
	}
	claims := idTokenClaims(u, req.GetGrantedScopes())
	if idp != "" {
		claims["idp"] = idp
	}
	sess.IDTokenClaims().Extra = claims
	return nil
}

func (h *refreshUserCheck) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return fosite.ErrUnknownRequest
}

func (h *refreshUserCheck) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (h *refreshUserCheck) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne("refresh_token")
}

// grantUser is the user of a grant, who must still exist and be active
// and enabled: else invalid_grant.
func grantUser(ctx context.Context, users userReader, id string) (*storage.User, error) {
	u, err := users.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (!u.Active || u.Disabled)) {
		return nil, fosite.ErrInvalidGrant.WithHint("The user of this grant no longer exists or is disabled.")
	}
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return u, nil
}

// codeUserCheck is a token endpoint handler for the code exchange: the
// code's user must still exist and be active and enabled. Disabling a
// user revokes their codes, but a login that read the user just before
// the disable may write its code just after: its exchange is refused
// here (and, like any refused exchange, spends the code's PKCE data: the
// code is dead even if the user is enabled again).
type codeUserCheck struct {
	users userReader
}

// userReader reads a user: what the grant checks need of the store.
type userReader interface {
	GetUser(ctx context.Context, id string) (*storage.User, error)
}

func (h codeUserCheck) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := req.GetSession().(*session)
	if !ok || sess.Subject == "" {
		return fosite.ErrServerError.WithDebug("code exchange: unexpected session")
	}
	_, err := grantUser(ctx, h.users, sess.Subject)
	return err
}

func (codeUserCheck) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return fosite.ErrUnknownRequest
}

func (codeUserCheck) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (codeUserCheck) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne("authorization_code")
}

// kidSigner signs with the current key (Generate, signer.go) but verifies
// by the token's kid against every published key, so access tokens and
// id_token_hints signed by a key that has since been retired still verify
// (fosite alone only knows the current key).
type kidSigner struct {
	*jwt.DefaultSigner
	keys *keys.Manager
}

func (k *kidSigner) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.Parse(token, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, alg, ok := k.keys.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown signing key %q", kid)
		}
		if string(t.Method) != alg {
			return nil, fmt.Errorf("token algorithm %q does not match key %q (%s)", t.Method, kid, alg)
		}
		return pub, nil
	})
}

func (k *kidSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := k.Decode(ctx, token); err != nil {
		return "", err
	}
	i := strings.LastIndexByte(token, '.')
	return token[i+1:], nil
}
