package storage

import (
	"time"

	"github.com/uptrace/bun"
)

// Client is a registered OAuth 2.0 / OpenID Connect client. It implements
// fosite.Client and fosite.OpenIDConnectClient (see client.go).
type Client struct {
	bun.BaseModel `bun:"table:clients"`

	ID         string `bun:"id,pk"`
	Name       string `bun:"name,notnull"`
	SecretHash []byte `bun:"secret_hash"` // keyed hash of the secret; empty for public clients
	Public     bool   `bun:"public,notnull"`
	// TokenEndpointAuthMethod is "none" for public clients, otherwise
	// "client_secret_basic" (default) or "client_secret_post".
	TokenEndpointAuthMethod string    `bun:"token_endpoint_auth_method,notnull"`
	RedirectURIs            []string  `bun:"redirect_uris,type:text,notnull"` // JSON arrays in text columns on every dialect
	PostLogoutRedirectURIs  []string  `bun:"post_logout_redirect_uris,type:text,notnull"`
	AllowedOrigins          []string  `bun:"allowed_origins,type:text,notnull"` // CORS origins, exact match
	GrantTypes              []string  `bun:"grant_types,type:text,notnull"`
	ResponseTypes           []string  `bun:"response_types,type:text,notnull"`
	Scopes                  []string  `bun:"scopes,type:text,notnull"`
	Audiences               []string  `bun:"audiences,type:text,notnull"` // audiences (RFC 8707 resources) the client may ask for
	DefaultAudiences        []string  `bun:"default_audiences,type:text,notnull"`
	CreatedAt               time.Time `bun:"created_at,notnull"`
	UpdatedAt               time.Time `bun:"updated_at,notnull"`

	// RequireDPoP refuses the client's token requests without a DPoP
	// proof (RFC 9449): every token issued to it is sender-constrained.
	RequireDPoP bool `bun:"require_dpop,notnull"`

	// RequireMFA: a user signs in to this client with a second factor
	// (acr urn:bridgekeeper:acr:mfa), whatever the request asks for.
	RequireMFA bool `bun:"require_mfa,notnull"`
}

// SigningKey is one JWT signing key. The private key is stored encrypted
// (AES-GCM, see broker/keys); storage never sees it in the clear.
type SigningKey struct {
	bun.BaseModel `bun:"table:signing_keys"`

	KID        string    `bun:"kid,pk"`
	Algorithm  string    `bun:"algorithm,notnull"`   // RS256 or ES256
	PublicJWK  []byte    `bun:"public_jwk,notnull"`  // JSON of the public JWK
	PrivateEnc []byte    `bun:"private_enc,notnull"` // AES-GCM(nonce||ciphertext) of the PKCS#8 DER private key
	CreatedAt  time.Time `bun:"created_at,notnull"`
	// ActivateAt is when the key starts signing; it is published in the
	// JWKS from CreatedAt on.
	ActivateAt time.Time `bun:"activate_at,notnull"`
	// RetiredAt is when a newer key took over signing (nil while current or next).
	RetiredAt *time.Time `bun:"retired_at"`
	// RemoveAt is when the key leaves the JWKS: RetiredAt plus the longest
	// lifetime of a token it may have signed (nil until retired).
	RemoveAt *time.Time `bun:"remove_at"`
}

// User is a broker account: a local account (with a password) or one made
// for an upstream identity.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID            string    `bun:"id,pk"` // random, stable; the sub of every token
	Email         string    `bun:"email"` // lower-cased; unique when not empty
	EmailVerified bool      `bun:"email_verified,notnull"`
	PasswordHash  string    `bun:"password_hash,notnull"` // argon2id PHC string; empty: no local password
	Name          string    `bun:"name,notnull"`
	GivenName     string    `bun:"given_name,notnull"`
	FamilyName    string    `bun:"family_name,notnull"`
	Picture       string    `bun:"picture,notnull"`
	Active        bool      `bun:"active,notnull"`   // activated (e-mail confirmed or created by an operator)
	Disabled      bool      `bun:"disabled,notnull"` // disabled by an operator
	CreatedAt     time.Time `bun:"created_at,notnull"`
	UpdatedAt     time.Time `bun:"updated_at,notnull"`
}

// Identity links an upstream identity (connector + upstream subject) to a user.
type Identity struct {
	bun.BaseModel `bun:"table:identities"`

	ConnectorID   string    `bun:"connector_id,pk"`
	Subject       string    `bun:"subject,pk"`
	UserID        string    `bun:"user_id,notnull"`
	Email         string    `bun:"email,notnull"`
	EmailVerified bool      `bun:"email_verified,notnull"`
	Claims        []byte    `bun:"claims"`         // JSON of the last upstream claims
	ConnectorData []byte    `bun:"connector_data"` // opaque, for Refresh; never leaves the broker
	CreatedAt     time.Time `bun:"created_at,notnull"`
	LastLoginAt   time.Time `bun:"last_login_at,notnull"`
}

// BrowserSession is a broker login session bound to a cookie. ID is the
// SHA-256 (hex) of the cookie value; the value itself is never stored.
type BrowserSession struct {
	bun.BaseModel `bun:"table:browser_sessions"`

	ID        string    `bun:"id,pk"`
	UserID    string    `bun:"user_id,notnull"`
	AuthTime  time.Time `bun:"auth_time,notnull"`
	IDP       string    `bun:"idp,notnull"`           // "local" or a connector id
	AMR       []string  `bun:"amr,type:text,notnull"` // e.g. ["pwd"] or ["fed"]
	CreatedAt time.Time `bun:"created_at,notnull"`
	ExpiresAt time.Time `bun:"expires_at,notnull"`

	// IDPSubject is the upstream subject of a federated login (the
	// identity the session came from); empty for local logins and for
	// sessions written before it was recorded.
	IDPSubject string `bun:"idp_subject,notnull"`
	// AuthTimeUnknown: the upstream did not say when the user
	// authenticated, so AuthTime is when the broker received its answer
	// and cannot satisfy max_age or prompt=login.
	AuthTimeUnknown bool `bun:"auth_time_unknown,notnull"`
	// CheckedAt is when the upstream last confirmed the identity (nil:
	// at CreatedAt).
	CheckedAt *time.Time `bun:"checked_at"`
}

// LastChecked is when the upstream last confirmed the session's identity.
func (bs *BrowserSession) LastChecked() time.Time {
	if bs.CheckedAt != nil {
		return *bs.CheckedAt
	}
	return bs.CreatedAt
}

// PendingLogin is an authorization request waiting for the user to log in.
// ID is the SHA-256 (hex) of a random value carried in the login URL and
// bound to a browser cookie (BrowserBinding is the SHA-256 hex of that
// cookie). The fosite request is rebuilt from Form on completion.
type PendingLogin struct {
	bun.BaseModel `bun:"table:pending_logins"`

	ID             string    `bun:"id,pk"`
	BrowserBinding string    `bun:"browser_binding,notnull"`
	ClientID       string    `bun:"client_id,notnull"`
	Form           string    `bun:"form,notnull"` // url.Values.Encode() of the authorize request
	RequestedAt    time.Time `bun:"requested_at,notnull"`
	ExpiresAt      time.Time `bun:"expires_at,notnull"`

	// Set when the user goes to an upstream connector.
	ConnectorID       string `bun:"connector_id,notnull"`
	UpstreamStateHash string `bun:"upstream_state_hash,notnull"` // SHA-256 hex of the state sent upstream
	ConnectorState    []byte `bun:"connector_state"`             // opaque state from the connector's LoginURL
}

// ActionToken is a single-use token sent by e-mail (activation, password
// reset, e-mail change). ID is the SHA-256 hex of the token.
type ActionToken struct {
	bun.BaseModel `bun:"table:action_tokens"`

	ID        string     `bun:"id,pk"`
	Kind      string     `bun:"kind,notnull"` // "activate", "reset", "email_change"
	UserID    string     `bun:"user_id,notnull"`
	Data      string     `bun:"data,notnull"` // e.g. the new e-mail address
	CreatedAt time.Time  `bun:"created_at,notnull"`
	ExpiresAt time.Time  `bun:"expires_at,notnull"`
	UsedAt    *time.Time `bun:"used_at"`
}

// RateCounter is a fixed-window counter for brute-force limits, shared by
// every replica.
type RateCounter struct {
	bun.BaseModel `bun:"table:rate_counters"`

	Key         string    `bun:"key,pk"`
	Count       int       `bun:"count,notnull"`
	WindowStart time.Time `bun:"window_start,notnull"`
	ExpiresAt   time.Time `bun:"expires_at,notnull"`
}
