// Package oidc is the core of Bridgekeeper's browser client: an OpenID
// Connect relying party for public clients (authorization code + PKCE S256)
// with ID-token verification, a token store, refresh scheduling that is safe
// across tabs, logout and userinfo.
//
// The package is plain Go and runs on the host for tests. Everything that
// touches the outside world is an interface in Deps; the WebAssembly build
// (package wasm/jsbridge) implements them with fetch, WebCrypto, IndexedDB,
// Web Locks and BroadcastChannel. To keep that build small and quick to start
// the package uses neither fmt, net/url, net/http, encoding/json nor anything
// from crypto/ (see sum256).
package oidc

import (
	"strings"
	"sync"
	"time"
)

// Config describes the client registration at the broker.
type Config struct {
	// Issuer is the broker's issuer URL, without a trailing slash.
	Issuer string
	// ClientID is the public client's id.
	ClientID string
	// RedirectURI receives the authorization response.
	RedirectURI string
	// PostLogoutRedirectURI is where the broker sends the browser after logout.
	PostLogoutRedirectURI string
	// Scopes requested by default; "openid" is always included.
	// Defaults to openid, profile, email, offline_access.
	Scopes []string
	// ClockSkew tolerated on exp and iat. Default 60 s.
	ClockSkew time.Duration
	// RefreshBefore is how long before expiry the access token is renewed
	// (at most a quarter of its lifetime). Default 60 s.
	RefreshBefore time.Duration
	// DisableDPoP turns DPoP off. Otherwise the client binds its tokens to
	// its ProofKey (RFC 9449) whenever the broker advertises ES256 in
	// dpop_signing_alg_values_supported.
	DisableDPoP bool
	// OnEvent, when set, receives the client's events.
	OnEvent func(Event)
}

// Event types.
const (
	EventTokenRefreshed = "tokenRefreshed"
	EventSessionExpired = "sessionExpired"
	EventLoggedOut      = "loggedOut"
	EventLoggedIn       = "loggedIn"
	EventError          = "error"
)

// Event is something that happened to the session.
type Event struct {
	Type string
	// Err is set for EventError and EventSessionExpired.
	Err error
}

// Discovery holds the endpoints of the broker's discovery document.
type Discovery struct {
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	UserinfoEndpoint      string
	RevocationEndpoint    string
	EndSessionEndpoint    string
	JWKSURI               string
	// IssParameter says authorization responses carry iss (RFC 9207).
	IssParameter bool
	// DPoPAlgs is dpop_signing_alg_values_supported (RFC 9449).
	DPoPAlgs []string
}

// AuthOptions are the per-login options of AuthorizeURL.
type AuthOptions struct {
	// Scopes replaces the configured scopes for this login ("openid" is
	// always added).
	Scopes []string
	// Prompt is sent as prompt: "login" or "none" (Bridgekeeper refuses
	// "consent" and "select_account" with consent_required and
	// account_selection_required; other issuers may honour them).
	Prompt string
	// MaxAge, when set, is sent as max_age in seconds: the broker makes the
	// user log in again if the last login is older.
	MaxAge *int
	// ACRValues is sent as acr_values (space-separated): the sign-in
	// strength asked for, e.g. "urn:bridgekeeper:acr:mfa" makes the broker
	// ask a user who signed in with a password only for a second factor.
	ACRValues string
	// IDPHint selects the broker's connector (okta, google, facebook, …).
	IDPHint string
	// LoginHint pre-fills the login form.
	LoginHint string
	// Extra parameters added to the authorize URL.
	Extra map[string]string
	// AppState is returned on the session after the callback (e.g. the path
	// to go back to).
	AppState string
}

// LogoutOptions are the options of Logout.
type LogoutOptions struct {
	// PostLogoutRedirectURI overrides the configured one.
	PostLogoutRedirectURI string
	// State is passed to the end_session endpoint and back.
	State string
}

const (
	storeSession = "session"
	storePending = "pending"
	pendingTTL   = 15 * time.Minute
	// maxPending bounds the logins in progress kept at once (tabs that
	// started a login and never came back); the oldest go first.
	maxPending = 8
)

// Client is the OIDC client. Its methods are safe for concurrent use.
type Client struct {
	cfg  Config
	deps Deps

	mu          sync.Mutex // guards the fields below
	disc        *Discovery
	jwks        []map[string]any
	jwksFetched time.Time
	session     *Session
	status      Status
	lastErr     error
	retryAt     time.Time
	nonces      map[string]string // DPoP-Nonce by server origin

	op      sync.Mutex    // serializes refresh, callback and logout in this instance
	changed chan struct{} // signalled when the session or status changes
}

// New checks the configuration and returns a client. It does no I/O.
func New(cfg Config, deps Deps) (*Client, error) {
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	switch {
	case cfg.Issuer == "":
		return nil, newError(CodeConfig, "issuer is required", nil)
	case cfg.ClientID == "":
		return nil, newError(CodeConfig, "client id is required", nil)
	case cfg.RedirectURI == "":
		return nil, newError(CodeConfig, "redirect URI is required", nil)
	case deps.Transport == nil || deps.Verifier == nil:
		return nil, newError(CodeConfig, "transport and verifier are required", nil)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.RefreshBefore <= 0 {
		cfg.RefreshBefore = time.Minute
	}
	if deps.Clock == nil {
		deps.Clock = realClock{}
	}
	if deps.Random == nil {
		if deps.Random = defaultRandom(); deps.Random == nil {
			return nil, newError(CodeConfig, "a random source is required", nil)
		}
	}
	if deps.Store == nil {
		deps.Store = NewMemoryStore()
	}
	if deps.Locker == nil {
		deps.Locker = &localLocker{}
	}
	if deps.Broadcaster == nil {
		deps.Broadcaster = noBroadcast{}
	}
	return &Client{cfg: cfg, deps: deps, status: StatusLoading, changed: make(chan struct{}, 1)}, nil
}

func (c *Client) emit(typ string, err error) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(Event{Type: typ, Err: err})
	}
}

func (c *Client) notifyChanged() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}
