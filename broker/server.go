// Package broker is Bridgekeeper's HTTP server: an OpenID Connect issuer
// composed from fosite (authorization code + PKCE, refresh with rotation,
// client credentials, revocation, introspection, OpenID Connect), with the
// broker's own login page, browser sessions, discovery, JWKS, userinfo,
// RP-initiated logout and CORS.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/internal/cookie"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
)

// Routes, relative to the issuer.
const (
	pathAuth       = "/oauth2/auth"
	pathToken      = "/oauth2/token"
	pathRevoke     = "/oauth2/revoke"
	pathIntrospect = "/oauth2/introspect"
	pathLogout     = "/oauth2/logout"
	pathUserinfo   = "/userinfo"
	pathLogin      = "/login"
	pathSignIn     = "/login/start" // a sign-in to the broker itself (SignInURL)
	pathDiscovery  = "/.well-known/openid-configuration"
	pathJWKS       = "/.well-known/jwks.json"
	pathHealth     = "/healthz"
)

// The refresh reuse grace (Config.RefreshReuseGrace): its default, and the
// longest one allowed. A longer window would let a stolen refresh token be
// replayed without revoking the grant for longer (RFC 9700 section 4.14).
const (
	DefaultRefreshReuseGrace = 10 * time.Second
	MaxRefreshReuseGrace     = 5 * time.Minute
)

// Config configures the broker. Issuer, Store, Keys and Secret are required;
// zero durations take the documented defaults.
type Config struct {
	Issuer string // e.g. http://127.0.0.1:8080; all endpoints are under it
	Store  Store  // what the broker uses of storage; *storage.Store fits
	Keys   *keys.Manager
	Secret *secret.System
	Logger *slog.Logger

	AccessTokenLifetime   time.Duration // default 15m
	IDTokenLifetime       time.Duration // default 1h
	RefreshTokenLifetime  time.Duration // default 720h
	AuthorizeCodeLifetime time.Duration // default 2m
	SessionLifetime       time.Duration // broker session cookie; default 24h
	PendingLoginLifetime  time.Duration // default 10m
	// RefreshReuseGrace: a refresh token presented again within this time
	// after its rotation is refused (invalid_grant) without revoking the
	// grant, so the loser of two concurrent refreshes does not end the
	// grant the winner renewed; later reuse revokes the whole family.
	// Zero takes the default, DefaultRefreshReuseGrace; a negative value
	// turns it off (any reuse revokes). At most 5m.
	RefreshReuseGrace time.Duration
	TemplateDir       string // optional directory whose *.html override the embedded templates (else Theme.TemplateDir)

	// Theme styles the login, error and logout pages (product name, logo,
	// colour), like broker/accounts' pages.
	Theme Theme

	// LoginLimiter, when set, is asked before every password check of the
	// login form (action "login", the e-mail address, the client IP), and
	// before every second-factor code.
	LoginLimiter LoginLimiter

	// Factors, when set, holds the second factors of local accounts: a
	// user who has one is asked for it after the password (the second
	// step, /login/mfa), and authorization requests can step up to it
	// (acr_values). MFA is the policy: MFAOff, MFAOptional (the default
	// with Factors) or MFARequired (a user without a factor enrols one
	// after the password step).
	Factors *mfa.Service
	MFA     string

	// Passkeys, when set, offers "Sign in with a passkey" on the login
	// page (and the e-mail field's autofill): a passkey with user
	// verification signs the user in without a password or second step
	// (amr hwk or swk, user, mfa). See broker/passkey.
	Passkeys *passkey.Service

	// RefreshCheck, when set, is called on every refresh_token grant with
	// the grant's user id and how they logged in (the ID token's idp claim:
	// "local" or a connector id), before anything is issued. An error that
	// wraps connectors.ErrIdentityRevoked ends the grant (invalid_grant,
	// and the grant's access and refresh tokens are revoked);
	// any other error answers temporarily_unavailable and leaves the grant
	// alone. broker/federation's Refresh fits.
	RefreshCheck RefreshCheck

	// SessionCheck, when set, re-checks upstream a federated browser
	// session before it is reused silently (see SessionCheck);
	// broker/federation's SessionCheck fits.
	SessionCheck SessionCheck

	// LoginOptions are the login page's "Continue with …" buttons, in
	// order (broker/federation's LoginOptions); LoginLinks the links under
	// its form ("Create account", "Forgot password?").
	LoginOptions []LoginOption
	LoginLinks   []LoginLink

	// AccountPages are the account pages the broker's pages link to, when
	// local accounts are served.
	AccountPages AccountPages

	// Mounts serve more pages under the issuer: the account pages, the
	// connector routes. New calls each once, after adding its own routes.
	Mounts []Mount

	// GrantObserver, when set, is told about every token request: its
	// grant_type (as sent) and "ok" or the OAuth 2.0 error code of the
	// answer (ops.Metrics.ObserveGrant fits).
	GrantObserver func(grantType, outcome string)

	// DPoPNonce makes every DPoP proof carry a server nonce (RFC 9449
	// section 8): the broker hands one out in DPoP-Nonce and refuses a
	// proof without a current one (use_dpop_nonce).
	DPoPNonce bool
	// DPoPProofMaxAge is how old a DPoP proof's iat may be; default
	// DefaultDPoPProofMaxAge.
	DPoPProofMaxAge time.Duration
}

// Theme styles the broker's pages: the one theme of every page (the
// account and federation pages too; see internal/pagekit). Its
// PrimaryColor is #rgb, #rrggbb or a colour name, else New fails; its
// TemplateDir is used when Config.TemplateDir is empty.
type Theme = pagekit.Theme

// RefreshCheck re-checks a user on a refresh grant (see Config.RefreshCheck).
type RefreshCheck func(ctx context.Context, userID, idp string) error

// A Mount adds routes to the broker's router r, their paths relative to the
// issuer's path like the broker's own, for pages served beside the broker's
// (Config.Mounts). Their handlers may call s: read and complete a pending
// login, read the browser session, render a message page. New calls a Mount
// once, while it builds s, so s serves no request before every Mount ran;
// a Mount's error (its pages do not load) fails New.
type Mount func(r *mux.Router, s *Server) error

// LoginLimiter limits login attempts (broker/accounts' Limiter fits).
type LoginLimiter interface {
	Allow(ctx context.Context, action, account, ip string) (ok bool, retryAfter time.Duration, err error)
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.AccessTokenLifetime, 15*time.Minute)
	def(&c.IDTokenLifetime, time.Hour)
	def(&c.RefreshTokenLifetime, 720*time.Hour)
	def(&c.AuthorizeCodeLifetime, 2*time.Minute)
	def(&c.SessionLifetime, 24*time.Hour)
	def(&c.PendingLoginLifetime, 10*time.Minute)
	if c.RefreshReuseGrace == 0 {
		c.RefreshReuseGrace = DefaultRefreshReuseGrace
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	c.Theme = c.Theme.WithDefaults()
	if c.TemplateDir == "" {
		c.TemplateDir = c.Theme.TemplateDir
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// AccessTokenLifetime is how long the access tokens of a broker built from
// cfg are valid: an API that verifies access tokens offline accepts one for
// that long after its grant is revoked (the account pages say so).
func AccessTokenLifetime(cfg Config) time.Duration {
	cfg.setDefaults()
	return cfg.AccessTokenLifetime
}

// MaxTokenLifetime is the longest lifetime of a JWT the broker signs (access
// and ID tokens): what keys.Options.MaxTokenLifetime should be.
func MaxTokenLifetime(cfg Config) time.Duration {
	cfg.setDefaults()
	return max(cfg.AccessTokenLifetime, cfg.IDTokenLifetime)
}

// Server is the broker's HTTP server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tokens   tokenStore
	sessions sessionStore // the rest of the broker's: Config.Store
	keys     *keys.Manager
	provider *fosite.Fosite
	handler  http.Handler
	pages    *pagekit.Pages
	cookies  cookie.Policy
	basePath string

	discovery []byte
	origins   *originCache
	csrf      *http.CrossOriginProtection // for the broker's own forms

	// refreshCheck is Config.RefreshCheck, stored once by New (the
	// provider's handler reads it through the pointer).
	refreshCheck atomic.Pointer[RefreshCheck]
	argon        argonSlots // caps concurrent password verifications
	dpop         *dpopState
}

// New builds the server. It does not start listening: serve Handler().
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("broker: issuer is required")
	case cfg.Store == nil:
		return nil, errors.New("broker: store is required")
	case cfg.Keys == nil:
		return nil, errors.New("broker: signing keys are required")
	case cfg.Secret == nil:
		return nil, errors.New("broker: system secret is required")
	}
	for _, o := range cfg.LoginOptions {
		if o.ID == "" || o.URL == nil {
			return nil, fmt.Errorf("broker: login option %q needs an id and a URL", o.Label)
		}
	}
	// The server keeps its own copies: a caller's later change does not
	// reach the pages.
	cfg.LoginOptions = slices.Clone(cfg.LoginOptions)
	cfg.LoginLinks = slices.Clone(cfg.LoginLinks)
	cfg.Mounts = slices.Clone(cfg.Mounts)
	switch cfg.MFA {
	case "":
		cfg.MFA = MFAOptional
	case MFAOff, MFAOptional, MFARequired:
	default:
		return nil, fmt.Errorf("broker: mfa policy %q must be off, optional or required", cfg.MFA)
	}
	if cfg.MFA == MFARequired && cfg.Factors == nil {
		return nil, errors.New("broker: mfa policy required needs Factors")
	}
	if cfg.RefreshReuseGrace > MaxRefreshReuseGrace {
		return nil, fmt.Errorf("broker: refresh reuse grace %v must be at most %v", cfg.RefreshReuseGrace, MaxRefreshReuseGrace)
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || (issuer.Scheme != "http" && issuer.Scheme != "https") || issuer.Host == "" {
		return nil, fmt.Errorf("broker: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	if issuer.RawQuery != "" || issuer.Fragment != "" {
		return nil, fmt.Errorf("broker: issuer %q must not have a query or fragment", cfg.Issuer)
	}
	pages, err := loadPages(cfg, issuer.Scheme == "https")
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		sessions: cfg.Store,
		keys:     cfg.Keys,
		pages:    pages,
		cookies:  cookie.For(cfg.Issuer),
		basePath: strings.TrimRight(issuer.Path, "/"),
		origins:  newOriginCache(cfg.Store, 10*time.Second),
		argon:    newArgonSlots(),
		dpop:     newDPoPState(cfg),
	}
	s.csrf = http.NewCrossOriginProtection()
	// Behind a proxy that rewrites Host, the issuer's origin is still ours.
	if err := s.csrf.AddTrustedOrigin(issuer.Scheme + "://" + issuer.Host); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if cfg.RefreshCheck != nil {
		s.refreshCheck.Store(&cfg.RefreshCheck)
	}
	s.provider, s.tokens = newProvider(cfg, &s.refreshCheck, s.EndUpstreamIdentity)
	if s.discovery, err = s.discoveryDocument(); err != nil {
		return nil, fmt.Errorf("broker: discovery document: %w", err)
	}
	if err := s.routes(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	return s, nil
}

// Handler is the broker's whole HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the server's resources (not the store or the keys, which
// the caller owns).
func (s *Server) Close() error { return nil }

func (s *Server) routes() error {
	root := mux.NewRouter()
	r := root
	if s.basePath != "" {
		r = root.PathPrefix(s.basePath).Subrouter()
	}

	cors, corsPerClient := s.cors(false), s.cors(true)
	r.Handle(pathAuth, limitBody(http.HandlerFunc(s.handleAuthorize))).Methods(http.MethodGet, http.MethodPost)
	r.Handle(pathToken, corsPerClient(limitBody(http.HandlerFunc(s.handleToken)))).Methods(http.MethodPost, http.MethodOptions)
	r.Handle(pathRevoke, corsPerClient(limitBody(http.HandlerFunc(s.handleRevoke)))).Methods(http.MethodPost, http.MethodOptions)
	r.Handle(pathIntrospect, limitBody(http.HandlerFunc(s.handleIntrospect))).Methods(http.MethodPost)
	r.Handle(pathUserinfo, corsPerClient(http.HandlerFunc(s.handleUserinfo))).Methods(http.MethodGet, http.MethodPost, http.MethodOptions)
	r.Handle(pathDiscovery, cors(http.HandlerFunc(s.handleDiscovery))).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
	r.Handle(pathJWKS, cors(http.HandlerFunc(s.handleJWKS))).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
	r.Handle(pathLogout, http.HandlerFunc(s.handleLogout)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(pathLogin, s.csrf.Handler(http.HandlerFunc(s.handleLogin))).Methods(http.MethodGet, http.MethodPost)
	r.Handle(pathSecondStep, s.csrf.Handler(http.HandlerFunc(s.handleSecondStep))).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(pathSignIn, s.handleSignIn).Methods(http.MethodGet)
	s.passkeyRoutes(r)
	r.HandleFunc(pathHealth, s.handleHealth).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/", s.handleHome).Methods(http.MethodGet, http.MethodHead)
	if s.basePath != "" {
		root.HandleFunc(s.basePath, s.handleHome).Methods(http.MethodGet, http.MethodHead)
	}
	for _, m := range s.cfg.Mounts {
		if err := m(r, s); err != nil {
			return err
		}
	}
	// Browsers ask the host's root for the icon, whatever the issuer's path.
	root.HandleFunc("/favicon.ico", handleFavicon).Methods(http.MethodGet, http.MethodHead)

	root.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
	})
	s.handler = root
	return nil
}

// limitBody caps request bodies of the OAuth endpoints (forms of a few
// hundred bytes) at 64 KiB.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := s.sessions.Ping(r.Context()); err != nil {
		s.log.WarnContext(r.Context(), "health check: storage", "err", err)
		http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// url returns the absolute URL of a broker path.
func (s *Server) url(path string) string { return s.cfg.Issuer + path }
