package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// newProvider composes fosite by hand with exactly the grants the broker
// supports (no implicit, hybrid, password, RFC 7523 or PAR).
func newProvider(cfg Config, store *txStore) (*fosite.Fosite, *fosite.Config) {
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
		// PKCE: required for public clients, S256 only. A missing method
		// counts as plain and is refused.
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		SendDebugMessagesToClients:     false,
		RefreshTokenScopes:             []string{"offline_access", "offline"},
		JWTScopeClaimKey:               jwt.JWTScopeFieldString, // RFC 9068: scope is a space-separated string
		AllowedPromptValues:            []string{"login", "none", "consent", "select_account"},
	}

	keyGetter := func(context.Context) (any, error) {
		k := cfg.Keys.SigningKey()
		if k == nil {
			return nil, errors.New("no signing key")
		}
		return k, nil
	}
	signer := &kidSigner{DefaultSigner: &jwt.DefaultSigner{GetPrivateKey: keyGetter}, keys: cfg.Keys}
	hmacStrategy := oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: fcfg}, fcfg)
	jwtStrategy := compose.NewOAuth2JWTStrategy(keyGetter, hmacStrategy, fcfg)
	jwtStrategy.Signer = signer
	oidcStrategy := compose.NewOpenIDConnectStrategy(keyGetter, fcfg)
	oidcStrategy.Signer = signer

	strategy := &compose.CommonStrategy{
		CoreStrategy:               jwtStrategy,
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
	return provider.(*fosite.Fosite), fcfg
}

// kidSigner signs with the current key (through fosite's DefaultSigner)
// but verifies by the token's kid against every published key, so access
// tokens and id_token_hints signed by a key that has since been retired
// still verify (fosite alone only knows the current key).
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

// txStore is the storage handed to fosite. It adds one thing to
// *storage.Store: when the broker already opened a transaction around
// NewAuthorizeResponse or NewAccessResponse, the transactions fosite's
// handlers begin inside it are no-ops (their Commit must not commit the
// broker's transaction; their Rollback is left to the broker, which sees
// the error).
type txStore struct {
	*storage.Store
}

type brokerTxKey struct{}

func (t *txStore) BeginTX(ctx context.Context) (context.Context, error) {
	if ctx.Value(brokerTxKey{}) != nil {
		return ctx, nil
	}
	return t.Store.BeginTX(ctx)
}

func (t *txStore) Commit(ctx context.Context) error {
	if ctx.Value(brokerTxKey{}) != nil {
		return nil
	}
	return t.Store.Commit(ctx)
}

func (t *txStore) Rollback(ctx context.Context) error {
	if ctx.Value(brokerTxKey{}) != nil {
		return nil
	}
	return t.Store.Rollback(ctx)
}

// inTx runs fn in one storage transaction. Errors are fosite errors: a
// serialization failure (concurrent use of the same code or token) asks
// the client to retry, anything else is a server error.
func (s *Server) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.store.Store.BeginTX(ctx)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	txCtx = context.WithValue(txCtx, brokerTxKey{}, true)
	if err := fn(txCtx); err != nil {
		if rbErr := s.store.Store.Rollback(txCtx); rbErr != nil {
			s.log.ErrorContext(ctx, "rollback", "err", rbErr)
		}
		return err
	}
	if err := s.store.Store.Commit(txCtx); err != nil {
		if errors.Is(err, fosite.ErrSerializationFailure) {
			return fosite.ErrInvalidRequest.WithWrap(err).WithDebug(err.Error()).
				WithHint("The request conflicted with a concurrent request using the same grant. Please retry the request.")
		}
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	return nil
}
