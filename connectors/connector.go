// Package connectors defines the contract between the broker and an upstream
// identity provider, and holds the built-in connectors (one folder each).
//
// A connector never sees fosite, the broker's tokens or its storage: it turns
// a browser redirect into an upstream login and the upstream's answer into an
// Identity. Connectors run out of process as plugins (see package plugins),
// so every value that crosses this contract is plain data.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Identity is what an upstream provider says about the user who logged in.
type Identity struct {
	// Subject is the upstream's stable identifier of the user. Required.
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Picture       string
	Groups        []string
	// Claims holds any further upstream claims worth keeping (JSON values).
	Claims map[string]any
	// ConnectorData is opaque to the broker: the connector stores what it
	// needs for Refresh (an upstream refresh token, say). It is kept
	// server side and never sent to clients. An identity without connector
	// data cannot be re-checked upstream (see RefreshConnector).
	ConnectorData []byte
	// AuthTime is when the user last authenticated at the upstream (an
	// OpenID Connect ID token's auth_time), as the upstream says; zero
	// when it does not say. It becomes the auth_time of the broker's
	// session. A connector that reports it must not guess it.
	AuthTime time.Time
	// AMR lists the methods the upstream says the user authenticated with
	// (an ID token's amr claim, RFC 8176 values such as "pwd", "otp",
	// "mfa"); nil when it does not say. It follows "fed" in the amr of the
	// broker's session and decides its acr (package broker/mfa). A
	// connector that reports it must not guess it, and must keep to
	// CheckAMR.
	AMR []string
}

// Bounds of Identity.AMR (CheckAMR).
const (
	MaxAMR           = 16 // values
	MaxAMRValueBytes = 32 // bytes each
)

// CheckAMR reports whether amr is a well-formed list of authentication
// method references: at most MaxAMR values, each 1 to MaxAMRValueBytes
// bytes of letters, digits and "-", "_", ".", ":" (RFC 8176's registered
// values are short lowercase tokens; other values are collision-resistant
// names). The error names the first value at fault.
func CheckAMR(amr []string) error {
	if len(amr) > MaxAMR {
		return fmt.Errorf("amr has %d values, over the limit of %d", len(amr), MaxAMR)
	}
	for i, v := range amr {
		if v == "" {
			return fmt.Errorf("amr[%d] is empty", i)
		}
		if len(v) > MaxAMRValueBytes {
			return fmt.Errorf("amr[%d] is %d bytes, over the limit of %d", i, len(v), MaxAMRValueBytes)
		}
		for j := 0; j < len(v); j++ {
			c := v[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
				return fmt.Errorf("amr[%d] holds the byte %#x, not a token character", i, c)
			}
		}
	}
	return nil
}

// Scopes are the scopes the broker's client asked for, so a connector can
// ask the upstream for what it needs (offline access for Refresh, groups).
type Scopes struct {
	OfflineAccess bool
	Groups        bool
}

// CallbackRequest is the upstream's redirect back to the broker, as data,
// with what the broker kept for it.
type CallbackRequest struct {
	// ConnectorState is what LoginURL returned in
	// LoginResponse.ConnectorState for this login (nil when it returned
	// none, or the pending login is gone).
	ConnectorState []byte
	// CallbackURL is the broker's /callback/{connector} URL: the
	// redirect_uri the login used upstream.
	CallbackURL string
	// Query is the callback URL's query string (code, state, error, …).
	Query url.Values
	// Form is the POST body for providers that answer with form_post.
	Form url.Values
}

// LoginRequest starts a login at the upstream.
type LoginRequest struct {
	// State is the value the upstream must send back; the broker checks it
	// before it calls HandleCallback.
	State string
	// CallbackURL is the broker's /callback/{connector} URL.
	CallbackURL string
	Scopes      Scopes
	// LoginHint is passed upstream when the provider supports it.
	LoginHint string

	// ForceLogin asks for a new sign-in upstream: the user must enter a
	// credential there now, even with a session of the upstream's own
	// (the broker's client sent prompt=login or max_age=0).
	ForceLogin bool
	// MaxAge, when set, is the oldest upstream sign-in the broker accepts
	// (the client's max_age): an older upstream session must sign the
	// user in again.
	MaxAge *time.Duration
}

// Fresh reports whether the request asks the upstream for a recent sign-in.
func (r LoginRequest) Fresh() bool { return r.ForceLogin || r.MaxAge != nil }

// ReauthConnector is implemented by connectors that honour
// LoginRequest.ForceLogin and MaxAge: they make the upstream ask for a
// credential when the request says so (OpenID Connect's prompt=login and
// max_age, Facebook's auth_type=reauthenticate), verify the upstream's
// answer against it (an ID token's auth_time: missing or too old is an
// ErrInvalidCallback) and report Identity.AuthTime. The broker refuses
// prompt=login and max_age (login_required) through any other connector,
// rather than claim a sign-in that may not have happened.
type ReauthConnector interface {
	CanReauthenticate() bool
}

// LoginResponse says where to send the browser.
type LoginResponse struct {
	// URL is the upstream authorization URL.
	URL string
	// ConnectorState is opaque data (PKCE verifier, nonce, …) the broker
	// keeps with the pending login and hands back to HandleCallback.
	ConnectorState []byte
}

// CallbackConnector is a connector that logs users in through a browser
// redirect to the upstream and back.
type CallbackConnector interface {
	LoginURL(ctx context.Context, req LoginRequest) (LoginResponse, error)
	HandleCallback(ctx context.Context, req CallbackRequest) (Identity, error)
}

// RefreshConnector is implemented by connectors that can re-check a user
// upstream. The broker calls Refresh on every refresh grant, and before it
// reuses a federated browser session silently once the session's last
// check is older than federation.recheck_interval. An error that wraps
// ErrIdentityRevoked ends the grant (invalid_grant), every broker session
// of that identity and every grant that came from it. Refresh is only
// called for identities with ConnectorData (what the connector re-checks
// with); the broker cannot re-check the others.
type RefreshConnector interface {
	Refresh(ctx context.Context, scopes Scopes, identity Identity) (Identity, error)
}

// Connector is a configured connector: its metadata plus its capabilities.
type Connector interface {
	CallbackConnector
}

// Errors a connector returns (wrapped with context) so the broker can tell
// the user what happened.
var (
	// ErrUpstreamDenied: the user or the upstream refused the login
	// (an error parameter on the callback).
	ErrUpstreamDenied = errors.New("the identity provider refused the login")
	// ErrInvalidCallback: the callback is malformed or fails verification
	// (bad signature, wrong nonce, expired token, wrong issuer or audience).
	ErrInvalidCallback = errors.New("the identity provider's answer could not be verified")
	// ErrIdentityRevoked: Refresh found the user removed or disabled upstream.
	ErrIdentityRevoked = errors.New("the identity is no longer valid upstream")
	// ErrPolicy: the identity does not meet the connector's policy (no
	// e-mail where one is required, wrong hosted domain, …).
	ErrPolicy = errors.New("the identity does not meet the connector's policy")
)

// OpenFunc builds a connector from its configuration (the JSON form of the
// connector's `config:` block in the broker's YAML). Plugin binaries hand one
// to plugins/sdk.Serve.
type OpenFunc func(ctx context.Context, config []byte, logger *slog.Logger) (Connector, error)

// UserError gives a connector error a message for the person signing in.
// Error text (the wrapped error's Error()) goes to the broker's log only:
// it may hold an upstream's answer, a token or an internal detail. The
// broker's error page shows Message, and only Message, under its own
// title for the error's kind (ErrPolicy, ErrUpstreamDenied, …). Message
// is plain text in the user's terms, one line, at most
// MaxUserMessageLength characters; the broker drops one that is not.
type UserError struct {
	Err     error
	Message string
}

// MaxUserMessageLength is the longest UserError.Message the broker shows,
// in characters.
const MaxUserMessageLength = 300

func (e *UserError) Error() string { return e.Err.Error() }
func (e *UserError) Unwrap() error { return e.Err }

// WithUserMessage wraps err (which should wrap one of the contract's
// errors) with a message for the person signing in; see UserError.
func WithUserMessage(err error, message string) error {
	if err == nil {
		return nil
	}
	return &UserError{Err: err, Message: message}
}

// UserMessage is the message for the person signing in that err carries
// (the outermost UserError's), or "" when it carries none.
func UserMessage(err error) string {
	var ue *UserError
	if errors.As(err, &ue) {
		return ue.Message
	}
	return ""
}
