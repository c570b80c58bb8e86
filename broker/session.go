package broker

import (
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// session is the fosite session of every grant. It is stored as JSON with
// each code and token (storage treats it as opaque JSON) and carries what
// the ID token and the JWT access token need.
type session struct {
	*openid.DefaultSession `json:"oidc"`

	// ClientID is the client the grant belongs to; it becomes the
	// client_id claim of access tokens (fosite does not add it).
	ClientID string `json:"client_id"`

	// IDPSubject is the upstream subject of a federated login (the
	// identity the grant came from), so that the grant ends with it.
	IDPSubject string `json:"idp_sub,omitempty"`

	// AccessAudience, when set, is the audience of the access token being
	// issued: a subset of the grant's, asked for with resource or audience
	// on the token request. Never stored: the grant keeps its audience.
	AccessAudience []string `json:"-"`

	// GrantScopes, when set, are the grant's scopes while a refresh
	// request's scope parameter narrowed the tokens being issued
	// (refreshScope): the rotated refresh token keeps these. Never stored.
	GrantScopes []string `json:"-"`

	// DPoPJKT is the thumbprint of the DPoP key the grant is bound to (its
	// code by dpop_jkt, its refresh tokens): a request without a proof
	// from that key is refused (dpop.go).
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// AccessJKT is the thumbprint of the DPoP key the access token being
	// issued (and, as stored with it, the access token) is bound to: its
	// cnf.jkt.
	AccessJKT string `json:"cnf_jkt,omitempty"`
}

var (
	_ openid.Session             = (*session)(nil)
	_ oauth2.JWTSessionContainer = (*session)(nil)
)

// newSession returns an empty session for fosite to fill from storage.
func newSession() *session {
	return &session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// AccessTokenAudience is the audience the token store records for the
// access token being issued (nil: the grant's).
func (s *session) AccessTokenAudience() []string { return s.AccessAudience }

// RefreshTokenScope is the scope the token store records for the refresh
// token being issued (nil: the one granted to this request).
func (s *session) RefreshTokenScope() []string { return s.GrantScopes }

// Clone implements fosite.Session; it must return our type, not the
// embedded DefaultSession. It is a deep copy written out (clone.go):
// fosite clones the session of every request, and a reflective copy cost
// about 2 % of a refresh.

func (s *session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	c.DefaultSession = cloneDefaultSession(s.DefaultSession)
	c.AccessAudience = slices.Clone(s.AccessAudience)
	c.GrantScopes = slices.Clone(s.GrantScopes)
	return &c
}

// GetJWTClaims implements oauth2.JWTSessionContainer. It returns fresh
// claims on every call so nothing (iat, jti, exp) leaks from one access
// token into the next one of the same grant.
func (s *session) GetJWTClaims() jwt.JWTClaimsContainer {
	extra := map[string]any{"client_id": s.ClientID}
	if s.AccessJKT != "" {
		extra["cnf"] = map[string]any{"jkt": s.AccessJKT} // RFC 9449 section 6.1
	}
	// How the user signed in (RFC 9068 §2.2.1), for APIs that require a
	// second factor (rp.RequireACR, rp.RequireAMR).
	if c := s.Claims; c != nil && c.AuthenticationContextClassReference != "" {
		extra["acr"] = c.AuthenticationContextClassReference
		if len(c.AuthenticationMethodsReferences) > 0 {
			extra["amr"] = c.AuthenticationMethodsReferences
		}
	}
	return &accessTokenClaims{
		JWTClaims: &jwt.JWTClaims{
			Subject: s.GetSubject(),
			Extra:   extra,
		},
		fallbackAudience: s.ClientID,
		narrowed:         s.AccessAudience,
	}
}

// GetJWTHeader implements oauth2.JWTSessionContainer: RFC 9068 access
// tokens carry typ at+jwt (kid comes from the signing JWK).
func (s *session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}
}

// accessTokenClaims are the RFC 9068 claims: when no audience was granted
// the token is meant for the client itself, so aud is never empty. A
// narrowed audience (session.AccessAudience) replaces the grant's.
type accessTokenClaims struct {
	*jwt.JWTClaims
	fallbackAudience string
	narrowed         []string
}

func (c *accessTokenClaims) With(expiry time.Time, scope, audience []string) jwt.JWTClaimsContainer {
	if c.narrowed != nil {
		audience = c.narrowed
	}
	if len(audience) == 0 && c.fallbackAudience != "" {
		audience = []string{c.fallbackAudience}
	}
	c.JWTClaims.With(expiry, scope, audience)
	return c
}
