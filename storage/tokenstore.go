package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
)

// TokenStore is the storage the broker hands to fosite: the fosite storage
// interfaces (client manager, authorization codes, access and refresh
// tokens with rotation and revocation, OpenID Connect and PKCE sessions,
// transactions) on the Store's token tables, plus the unit of work that
// lets one request's writes land together.
//
// Inside a unit (WithUnit, Run), the writes fosite's handlers make are
// recorded instead of executed, and the transactions fosite begins are
// no-ops; Run then applies every recorded write in one short transaction
// once the response is built. The grant is atomic, the slow part —
// signing the JWTs — never runs while a transaction holds SQLite's only
// writer connection (or Postgres row locks), and a grant whose writes do
// not commit spends nothing: its code or refresh token stays redeemable.
// On SQLite, concurrent units share commits (groupCommit).
//
// A spent code or rotated refresh token that a token request presents is
// reported to fosite as spent — which makes fosite revoke the whole grant
// — only when the token is authentic (TokenStoreConfig.Authentic), its own
// client presents it and, for a refresh token, the reuse grace has passed
// since its rotation. Anything else is reported as not found (fosite
// answers invalid_grant and revokes nothing), with an error that says
// why: ErrForgedToken, ErrReplayByOtherClient or ErrReuseWithinGrace.
type TokenStore struct {
	// s reads and writes the token tables: the Store, with the client
	// source and code signature below.
	s          *Store
	reuseGrace time.Duration
	authentic  func(ctx context.Context, token string) error
	clients    *clientCache // nil: no caching
	commits    groupCommit  // SQLite: concurrent units share a commit
}

var (
	_ fosite.ClientManager               = (*TokenStore)(nil)
	_ oauth2.CoreStorage                 = (*TokenStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*TokenStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*TokenStore)(nil)
	_ pkce.PKCERequestStorage            = (*TokenStore)(nil)
	// github.com/ory/fosite/storage.Transactional (not imported: that
	// package drags in fosite's test helpers).
	_ interface {
		BeginTX(ctx context.Context) (context.Context, error)
		Commit(ctx context.Context) error
		Rollback(ctx context.Context) error
	} = (*TokenStore)(nil)
)

// TokenStoreConfig configures a TokenStore.
type TokenStoreConfig struct {
	// CodeSignature gives the signature an authorization code is stored
	// under (fosite's authorization code strategy), so that a code's row
	// can carry its OpenID Connect session. Nil: OpenID Connect sessions
	// get rows of their own.
	CodeSignature func(code string) string
	// Authentic checks a code or refresh token presented to the token
	// endpoint (its HMAC). A spent token that fails it is reported as
	// not found, so that its signature half alone (all a log line, a
	// proxy or a database reader may have) cannot end a grant. Nil: every
	// token counts as authentic.
	Authentic func(ctx context.Context, token string) error
	// ReuseGrace is how long after its rotation a refresh token presented
	// again is refused without revoking its grant (the loser of two
	// concurrent refreshes must not end the grant the winner just
	// renewed). Zero or less: every reuse revokes.
	ReuseGrace time.Duration
	// ClientCacheTTL is how long a client loaded for fosite (every token
	// request authenticates one) is reused, for client authentication and
	// for the token rows loaded after it. A changed, deleted or re-keyed
	// client takes effect within this time. Zero: no caching.
	ClientCacheTTL time.Duration
}

// TokenStore returns the token store on s's connections.
func (s *Store) TokenStore(cfg TokenStoreConfig) *TokenStore {
	t := &TokenStore{reuseGrace: cfg.ReuseGrace, authentic: cfg.Authentic}
	c := *s
	c.codeSignature = cfg.CodeSignature
	if cfg.ClientCacheTTL > 0 {
		t.clients = newClientCache(cfg.ClientCacheTTL)
		c.clients = func(ctx context.Context, id string) (*Client, error) {
			return t.clients.get(ctx, id, s.LookupClient)
		}
	}
	t.s = &c
	return t
}

// GetClient implements fosite.ClientManager (through the cache, when
// there is one). Any failure other than "not found" is ErrUnavailable:
// fosite turns every client lookup error into invalid_client, and a valid
// client must not be told it is invalid while the database is down.
func (t *TokenStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if t.clients == nil {
		c, err := t.s.GetClient(ctx, id)
		return c, unavailable(err)
	}
	c, err := t.clients.get(ctx, id, t.s.LookupClient)
	if err != nil {
		return nil, unavailable(err)
	}
	return c, nil
}

// unavailable marks any failure other than "not found" as ErrUnavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, fosite.ErrNotFound) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// ClientAssertionJWTValid fails with fosite.ErrJTIKnown when the jti of a
// client assertion was seen and has not expired.
func (t *TokenStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	return t.s.clientAssertionJWTValid(ctx, jti)
}

// SetClientAssertionJWT records the jti of a client assertion until exp.
// It fails with fosite.ErrJTIKnown when the jti is recorded and unexpired.
func (t *TokenStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	return t.s.setClientAssertionJWT(ctx, jti, exp)
}

// BeginTX starts a transaction (see Store.BeginTX); inside a unit it is a
// no-op: the unit's writes land in Run's transaction.
func (t *TokenStore) BeginTX(ctx context.Context) (context.Context, error) {
	if bufferFrom(ctx) != nil {
		return ctx, nil
	}
	return t.s.BeginTX(ctx)
}

// Commit commits BeginTX's transaction; a no-op inside a unit.
func (t *TokenStore) Commit(ctx context.Context) error {
	if bufferFrom(ctx) != nil {
		return nil
	}
	return t.s.Commit(ctx)
}

// Rollback rolls back BeginTX's transaction; a no-op inside a unit.
func (t *TokenStore) Rollback(ctx context.Context) error {
	if bufferFrom(ctx) != nil {
		return nil
	}
	return t.s.Rollback(ctx)
}

// CreateAuthorizeCodeSession stores an authorization code. In a unit it is
// recorded as a bundle: fosite's OpenID Connect and PKCE handlers store
// their parts of the same authorization next (CreateOpenIDConnectSession,
// CreatePKCERequestSession), and the three are written together.
func (t *TokenStore) CreateAuthorizeCodeSession(ctx context.Context, sig string, req fosite.Requester) error {
	b := bufferFrom(ctx)
	if b == nil {
		return t.s.createAuthorizeCodeSession(ctx, sig, req)
	}
	code, err := encodeAuthorizeCodeSession(sig, req)
	if err != nil {
		return err
	}
	bundle := &codeBundle{code: code}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.codes == nil {
		b.codes = map[string]*codeBundle{}
	}
	b.codes[sig] = bundle
	b.ops = append(b.ops, func(ctx context.Context) error {
		w, err := t.s.prepareCreateAuthorizeCode(bundle.code, bundle.pkce, bundle.oidc)
		if err != nil {
			return err
		}
		return w(ctx)
	})
	return nil
}

// GetAuthorizeCodeSession loads an authorization code; a used one comes
// back with fosite.ErrInvalidatedAuthorizeCode when it counts as a replay
// (see TokenStore).
func (t *TokenStore) GetAuthorizeCodeSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	req, err := t.s.getAuthorizeCodeSession(ctx, sig, sess)
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		return t.replay(ctx, "code", req, err)
	}
	return req, err
}

// InvalidateAuthorizeCodeSession marks a code used (in a unit: when the
// unit commits, and only if no one else used it first).
func (t *TokenStore) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	return t.Record(ctx, func(ctx context.Context) error { return t.s.invalidateAuthorizeCodeSession(ctx, sig) })
}

// accessAudienceSession is a session whose access token is issued for a
// narrower audience than its grant (an RFC 8707 resource): the access
// token's row records that audience (for introspection), the refresh
// token's the grant's.
type accessAudienceSession interface {
	AccessTokenAudience() []string
}

// refreshScopeSession is a session whose refresh narrowed the scope of
// what it issued: the new refresh token's row keeps the grant's scope
// (RFC 6749 section 6).
type refreshScopeSession interface {
	RefreshTokenScope() []string
}

// CreateAccessTokenSession stores an access token.
func (t *TokenStore) CreateAccessTokenSession(ctx context.Context, sig string, req fosite.Requester) error {
	if sess, ok := req.GetSession().(accessAudienceSession); ok {
		if aud := sess.AccessTokenAudience(); aud != nil {
			if r, ok := req.(*fosite.Request); ok {
				c := *r // encoded at once: a shallow copy is enough
				c.GrantedAudience = slices.Clone(aud)
				req = &c
			}
		}
	}
	return t.recordPrepared(ctx)(t.s.prepareCreateAccessTokenSession(accessKey(sig), req))
}

// GetAccessTokenSession loads an access token; a revoked one comes back
// with fosite.ErrInactiveToken.
func (t *TokenStore) GetAccessTokenSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	return t.s.getAccessTokenSession(ctx, accessKey(sig), sess)
}

// DeleteAccessTokenSession removes an access token.
func (t *TokenStore) DeleteAccessTokenSession(ctx context.Context, sig string) error {
	return t.s.deleteAccessTokenSession(ctx, accessKey(sig))
}

// CreateRefreshTokenSession stores a refresh token and the signature of
// the access token issued with it.
func (t *TokenStore) CreateRefreshTokenSession(ctx context.Context, sig, accessSig string, req fosite.Requester) error {
	if sess, ok := req.GetSession().(refreshScopeSession); ok {
		if scope := sess.RefreshTokenScope(); scope != nil {
			if r, ok := req.(*fosite.Request); ok {
				c := *r // encoded at once: a shallow copy is enough
				c.GrantedScope = slices.Clone(scope)
				req = &c
			}
		}
	}
	return t.recordPrepared(ctx)(t.s.prepareCreateRefreshTokenSession(sig, accessKey(accessSig), req))
}

// GetRefreshTokenSession loads a refresh token; a rotated or revoked one
// comes back with fosite.ErrInactiveToken when it counts as a replay (see
// TokenStore).
func (t *TokenStore) GetRefreshTokenSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	req, err := t.s.getRefreshTokenSession(ctx, sig, sess)
	if errors.Is(err, fosite.ErrInactiveToken) {
		return t.replay(ctx, "refresh_token", req, err)
	}
	return req, err
}

// DeleteRefreshTokenSession removes a refresh token.
func (t *TokenStore) DeleteRefreshTokenSession(ctx context.Context, sig string) error {
	return t.s.deleteRefreshTokenSession(ctx, sig)
}

// RotateRefreshToken deactivates the refresh token being used and the
// access token issued with it (in a unit: when the unit commits). Of
// concurrent rotations of one token exactly one succeeds; the others get
// fosite.ErrInactiveToken (or fosite.ErrNotFound when the token is gone).
func (t *TokenStore) RotateRefreshToken(ctx context.Context, requestID, sig string) error {
	// The row fosite read before (in this request's memo) gives the
	// signature of its access token: the write need not read it again.
	accessSig := readAccessSignature(ctx, sig)
	return t.Record(ctx, func(ctx context.Context) error { return t.s.rotateRefreshToken(ctx, requestID, sig, accessSig) })
}

// RevokeRefreshToken deactivates every refresh token of a grant (the
// request id names the whole rotation family).
func (t *TokenStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return t.s.revokeRefreshToken(ctx, requestID)
}

// RevokeAccessToken deactivates every access token of a grant.
func (t *TokenStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	return t.s.revokeAccessToken(ctx, requestID)
}

// CreateOpenIDConnectSession stores the OpenID Connect part of an
// authorization (in a unit, with its code when it agrees with it).
func (t *TokenStore) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	codeSig := ""
	if t.s.codeSignature != nil {
		codeSig = t.s.codeSignature(code)
	}
	return t.createCodePart(ctx, codeSig,
		func() (encodedRequest, error) { return encodeOpenIDConnectSession(code, req) },
		func(c *codeBundle, p *encodedRequest) { c.oidc = p },
		func() (preparedWrite, error) { return t.s.prepareCreateOpenIDConnectSession(code, req) })
}

// GetOpenIDConnectSession loads the OpenID Connect part of an
// authorization into the session of requester.
func (t *TokenStore) GetOpenIDConnectSession(ctx context.Context, code string, requester fosite.Requester) (fosite.Requester, error) {
	return t.s.getOpenIDConnectSession(ctx, code, requester)
}

// DeleteOpenIDConnectSession removes the OpenID Connect part of an
// authorization (in a unit: when the unit commits).
func (t *TokenStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return t.Record(ctx, func(ctx context.Context) error { return t.s.deleteOpenIDConnectSession(ctx, code) })
}

// CreatePKCERequestSession stores the PKCE challenge of an authorization
// (in a unit, with its code when it agrees with it).
func (t *TokenStore) CreatePKCERequestSession(ctx context.Context, sig string, req fosite.Requester) error {
	return t.createCodePart(ctx, sig,
		func() (encodedRequest, error) { return encodePKCERequestSession(sig, req) },
		func(c *codeBundle, p *encodedRequest) { c.pkce = p },
		func() (preparedWrite, error) { return t.s.prepareCreatePKCERequestSession(sig, req) })
}

// createCodePart stores a part of an authorization: in a unit that holds
// the code stored under codeSig, in the code's bundle (encode, then set);
// else as a row of its own (prepare).
func (t *TokenStore) createCodePart(ctx context.Context, codeSig string, encode func() (encodedRequest, error),
	set func(*codeBundle, *encodedRequest), prepare func() (preparedWrite, error)) error {
	if b := bufferFrom(ctx); b != nil && codeSig != "" {
		if ok, err := b.attach(codeSig, encode, set); ok || err != nil {
			return err
		}
	}
	return t.recordPrepared(ctx)(prepare())
}

// GetPKCERequestSession loads the PKCE challenge of an authorization.
func (t *TokenStore) GetPKCERequestSession(ctx context.Context, sig string, sess fosite.Session) (fosite.Requester, error) {
	return t.s.getPKCERequestSession(ctx, sig, sess)
}

// DeletePKCERequestSession removes the PKCE challenge of an authorization.
// In a unit it waits for the commit: fosite's PKCE handler deletes the
// code's PKCE data while checking the token request, before the grant is
// made. Done at once, a grant that then failed on the database (a restart,
// a lost connection) would leave the client a code it can never redeem.
func (t *TokenStore) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return t.Record(ctx, func(ctx context.Context) error { return t.s.deletePKCERequestSession(ctx, sig) })
}

// recordPrepared records (or, outside a unit, runs) a write whose request
// was encoded when fosite handed it over: fosite keeps changing the shared
// session afterwards, and nothing is left to encode once the transaction
// holds the writer.
func (t *TokenStore) recordPrepared(ctx context.Context) func(w preparedWrite, err error) error {
	return func(w preparedWrite, err error) error {
		if err != nil {
			return err
		}
		return t.Record(ctx, w)
	}
}

// Why a spent token presented to the token endpoint was reported as not
// found rather than as spent (see TokenStore). Each is a
// fosite.ErrNotFound.
var (
	ErrForgedToken         = fmt.Errorf("a spent code or rotated refresh token whose HMAC does not check: %w", fosite.ErrNotFound)
	ErrReplayByOtherClient = fmt.Errorf("a spent code or rotated refresh token presented by another client than its own: %w", fosite.ErrNotFound)
	ErrReuseWithinGrace    = fmt.Errorf("a refresh token reused within the reuse grace period: %w", fosite.ErrNotFound)
)

// replay decides about a spent token (stored, with its inactive error)
// read on behalf of a token request, which presented it as param. Reads
// for anything else (revocation, introspection) carry no token request
// and get the token as it is.
func (t *TokenStore) replay(ctx context.Context, param string, stored fosite.Requester, err error) (fosite.Requester, error) {
	presented, ok := ctx.Value(fosite.AccessRequestContextKey).(fosite.AccessRequester)
	if !ok || stored == nil {
		return stored, err
	}
	if t.authentic != nil {
		if herr := t.authentic(ctx, presented.GetRequestForm().Get(param)); herr != nil {
			return nil, fmt.Errorf("%w (%v)", ErrForgedToken, herr)
		}
	}
	if presented.GetClient() == nil || stored.GetClient() == nil || presented.GetClient().GetID() != stored.GetClient().GetID() {
		return nil, ErrReplayByOtherClient
	}
	var rotated *RotatedError
	if t.reuseGrace > 0 && errors.As(err, &rotated) {
		if since := time.Since(rotated.At); since <= t.reuseGrace {
			return nil, fmt.Errorf("rotated %s ago: %w", since.Round(time.Millisecond), ErrReuseWithinGrace)
		}
	}
	return stored, err
}
