// Package fakeidp is a stand-in upstream identity provider for development
// and tests. On one listener it speaks the endpoint shapes of Okta
// (/oauth2/{server}/…), Google (discovery at the root, /o/oauth2/v2/auth, …)
// and Facebook (/dialog/oauth, Graph /oauth/access_token and /me), with
// configurable users, a plain HTML login page and hooks that make the next
// answer go wrong in a chosen way. It is a development tool, never part of
// the broker.
package fakeidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Fault makes the next ID token the server mints go wrong in one way.
type Fault int

// Faults for BreakNextIDToken.
const (
	FaultNone Fault = iota
	// FaultExpired: exp and iat lie an hour in the past.
	FaultExpired
	// FaultBadSignature: signed by a key that is not in the JWKS, under
	// the kid of the key that is.
	FaultBadSignature
	// FaultWrongNonce: the nonce claim is not the one the client sent.
	FaultWrongNonce
	// FaultWrongAudience: aud names another client.
	FaultWrongAudience
	// FaultWrongIssuer: iss names another issuer.
	FaultWrongIssuer
	// FaultHS256: signed with HS256 keyed by the client secret (an
	// algorithm-confusion attempt).
	FaultHS256
	// FaultNoAuthTime: the ID token has no auth_time (the claim is
	// optional unless max_age was asked for).
	FaultNoAuthTime
)

const (
	codeLifetime   = time.Minute
	accessLifetime = time.Hour
	idLifetime     = time.Hour
)

// Server is the fake upstream. It implements http.Handler.
type Server struct {
	cfg    Config
	logger *slog.Logger
	mux    *http.ServeMux
	alg    jose.SignatureAlgorithm

	mu            sync.Mutex
	users         map[string]*User // by subject
	clients       map[string]Client
	keys          []signingKey // newest last; all are published
	codes         map[string]*grant
	accessTokens  map[string]*grant
	refreshTokens map[string]*grant
	nextFault     Fault
	tokenError    string
	thinIDTokens  bool
	sso           map[string]*ssoSession // by the SHA-256 of the cookie's value
	now           func() time.Time
}

type signingKey struct {
	kid    string
	signer crypto.Signer
}

// grant is what a code, access token or refresh token stands for.
type grant struct {
	flavour     flavour
	issuer      string
	clientID    string
	subject     string
	redirectURI string
	scopes      []string
	nonce       string
	challenge   string
	idToken     string // minted when the code is issued
	offline     bool
	expires     time.Time
	// rotatedAt is when an Okta refresh token was rotated (zero: not yet).
	rotatedAt time.Time
	// authTime is when the user entered a credential (the ID token's
	// auth_time; zero: when the token is minted).
	authTime time.Time
}

type flavour string

const (
	flavourOkta     flavour = "okta"
	flavourGoogle   flavour = "google"
	flavourFacebook flavour = "facebook"
)

// New builds a fake upstream from cfg. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("fake IdP config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:           cfg,
		logger:        logger,
		alg:           jose.RS256,
		users:         map[string]*User{},
		clients:       map[string]Client{},
		codes:         map[string]*grant{},
		accessTokens:  map[string]*grant{},
		refreshTokens: map[string]*grant{},
		sso:           map[string]*ssoSession{},
		now:           time.Now,
	}
	if cfg.SigningAlgorithm == "ES256" {
		s.alg = jose.ES256
	}
	for i := range cfg.Users {
		u := cfg.Users[i]
		s.users[u.Subject] = &u
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = c
	}
	key, err := s.newKey()
	if err != nil {
		return nil, err
	}
	s.keys = []signingKey{key}
	s.routes()
	return s, nil
}

func (s *Server) newKey() (signingKey, error) {
	var signer crypto.Signer
	var err error
	if s.alg == jose.ES256 {
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return signingKey{kid: randomToken(8), signer: signer}, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	// Okta: one issuer per authorization server.
	m.HandleFunc("GET /oauth2/{as}/.well-known/openid-configuration", s.handleDiscovery(flavourOkta))
	m.HandleFunc("/oauth2/{as}/v1/authorize", s.handleAuthorize(flavourOkta))
	m.HandleFunc("POST /oauth2/{as}/v1/token", s.handleToken(flavourOkta))
	m.HandleFunc("GET /oauth2/{as}/v1/keys", s.handleKeys)
	m.HandleFunc("/oauth2/{as}/v1/userinfo", s.handleUserinfo(flavourOkta))
	// Google: the server's base URL stands in for accounts.google.com.
	m.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery(flavourGoogle))
	m.HandleFunc("/o/oauth2/v2/auth", s.handleAuthorize(flavourGoogle))
	m.HandleFunc("POST /token", s.handleToken(flavourGoogle))
	m.HandleFunc("GET /oauth2/v3/certs", s.handleKeys)
	m.HandleFunc("/v1/userinfo", s.handleUserinfo(flavourGoogle))
	// Facebook: the dialog and the Graph API, with or without a version.
	m.HandleFunc("/dialog/oauth", s.handleAuthorize(flavourFacebook))
	m.HandleFunc("/{version}/dialog/oauth", s.handleAuthorize(flavourFacebook))
	m.HandleFunc("/oauth/access_token", s.handleGraphToken)
	m.HandleFunc("/{version}/oauth/access_token", s.handleGraphToken)
	m.HandleFunc("GET /me", s.handleGraphMe)
	m.HandleFunc("GET /{version}/me", s.handleGraphMe)
	m.HandleFunc("GET /{$}", s.handleIndex)
	s.mux = m
}

// ServeHTTP serves every flavour's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// BreakNextIDToken makes the next ID token minted (at code issue or on a
// refresh) carry fault f.
func (s *Server) BreakNextIDToken(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFault = f
}

// FailNextTokenRequest makes the next OIDC token-endpoint request answer
// 400 with the given OAuth error code (e.g. "invalid_grant").
func (s *Server) FailNextTokenRequest(oauthError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenError = oauthError
}

// SetThinIDTokens makes ID tokens carry only the protocol claims (iss, sub,
// aud, exp, iat, nonce), like Okta's org server, so clients must call
// userinfo for e-mail, name and groups.
func (s *Server) SetThinIDTokens(thin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.thinIDTokens = thin
}

// SetUserDisabled disables or re-enables a user. A disabled user cannot
// log in, refresh tokens, call userinfo or the Graph API.
func (s *Server) SetUserDisabled(subject string, disabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("no user %q", subject)
	}
	u.Disabled = disabled
	return nil
}

// SetUserAMR sets the amr claim of the user's ID tokens from now on (as
// Okta reports ["pwd", "mfa", "otp"] after a second factor); nil drops the
// claim. The values are sent as given, however odd.
func (s *Server) SetUserAMR(subject string, amr []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("no user %q", subject)
	}
	u.AMR = slices.Clone(amr)
	return nil
}

// RotateKey adds a new signing key; tokens minted from now on use it. The
// old keys stay published.
func (s *Server) RotateKey() error {
	key, err := s.newKey()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, key)
	return nil
}

// Users returns a copy of the configured users.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.cfg.Users))
	for _, u := range s.cfg.Users {
		out = append(out, *s.users[u.Subject])
	}
	return out
}

// baseURL is the scheme and host every issuer and endpoint hangs off.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != "" {
		return strings.TrimSuffix(s.cfg.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// issuer is the issuer for a flavour; Okta's includes the authorization
// server's id from the path.
func (s *Server) issuer(r *http.Request, f flavour) string {
	if f == flavourOkta {
		return s.baseURL(r) + "/oauth2/" + r.PathValue("as")
	}
	return s.baseURL(r)
}

// pruneLocked drops expired codes and tokens once the maps grow, so a
// long-running demo does not grow without bound.
func (s *Server) pruneLocked(m map[string]*grant) {
	if len(m) < 1024 {
		return
	}
	now := s.now()
	for k, g := range m {
		if now.After(g.expires) {
			delete(m, k)
		}
	}
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
