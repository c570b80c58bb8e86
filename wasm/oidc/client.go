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
	"context"
	"encoding/base64"
	"io"
	"strconv"
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

// --- HTTP -------------------------------------------------------------------

func (c *Client) send(ctx context.Context, req Request) (map[string]any, error) {
	resp, err := c.deps.Transport.Do(ctx, req)
	if err != nil {
		return nil, newError(CodeNetwork, req.Method+" "+req.URL, err)
	}
	m, jsonErr := parseJSONObject(resp.Body)
	if resp.Status >= 400 {
		if jsonErr == nil && str(m, "error") != "" {
			return nil, newError(str(m, "error"), str(m, "error_description"), nil)
		}
		if resp.Status >= 500 {
			return nil, newError(CodeBrokerDown, "HTTP "+strconv.Itoa(resp.Status)+" from "+req.URL, nil)
		}
		return nil, newError(CodeInvalidResponse, "HTTP "+strconv.Itoa(resp.Status)+" from "+req.URL, nil)
	}
	if jsonErr != nil {
		return nil, newError(CodeInvalidResponse, "no JSON object from "+req.URL, jsonErr)
	}
	return m, nil
}

func (c *Client) getJSON(ctx context.Context, url, bearer string) (map[string]any, error) {
	h := map[string]string{"Accept": "application/json"}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	return c.send(ctx, Request{Method: "GET", URL: url, Header: h})
}

func (c *Client) postForm(ctx context.Context, url string, form params) (map[string]any, error) {
	return c.send(ctx, Request{
		Method: "POST",
		URL:    url,
		Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
		Body:   form.encode(),
	})
}

// Discovery fetches the broker's discovery document once and checks that it
// belongs to the configured issuer.
func (c *Client) Discovery(ctx context.Context) (*Discovery, error) {
	c.mu.Lock()
	d := c.disc
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	m, err := c.getJSON(ctx, c.cfg.Issuer+"/.well-known/openid-configuration", "")
	if err != nil {
		return nil, err
	}
	d = &Discovery{
		Issuer:                str(m, "issuer"),
		AuthorizationEndpoint: str(m, "authorization_endpoint"),
		TokenEndpoint:         str(m, "token_endpoint"),
		UserinfoEndpoint:      str(m, "userinfo_endpoint"),
		RevocationEndpoint:    str(m, "revocation_endpoint"),
		EndSessionEndpoint:    str(m, "end_session_endpoint"),
		JWKSURI:               str(m, "jwks_uri"),
		IssParameter:          m["authorization_response_iss_parameter_supported"] == true,
	}
	if d.Issuer != c.cfg.Issuer {
		return nil, newError(CodeInvalidResponse, "discovery issuer "+d.Issuer+" is not "+c.cfg.Issuer, nil)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" || d.JWKSURI == "" {
		return nil, newError(CodeInvalidResponse, "discovery lacks authorization, token or jwks endpoint", nil)
	}
	c.mu.Lock()
	c.disc = d
	c.mu.Unlock()
	return d, nil
}

// --- login ------------------------------------------------------------------

func (c *Client) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(c.deps.Random, b); err != nil {
		return "", newError(CodeConfig, "random source", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (c *Client) loadPending(ctx context.Context) (map[string]any, error) {
	data, found, err := c.deps.Store.Load(ctx, storePending)
	if err != nil {
		return nil, newError(CodeConfig, "load pending logins", err)
	}
	if !found {
		return map[string]any{}, nil
	}
	m, err := parseJSONObject(data)
	if err != nil {
		return map[string]any{}, nil // a corrupt record is as good as none
	}
	// Drop what has expired.
	now := c.deps.Clock.Now()
	for k, v := range m {
		rec, _ := v.(map[string]any)
		created, _ := num(rec, "created")
		if now.Sub(time.UnixMilli(int64(created))) > pendingTTL {
			delete(m, k)
		}
	}
	return m, nil
}

// dropOldest removes the oldest pending logins until at most keep remain.
func dropOldest(pending map[string]any, keep int) {
	for len(pending) > keep {
		oldest, at := "", 0.0
		for k, v := range pending {
			rec, _ := v.(map[string]any)
			created, _ := num(rec, "created")
			if oldest == "" || created < at {
				oldest, at = k, created
			}
		}
		delete(pending, oldest)
	}
}

// AuthorizeURL starts a login: it creates the PKCE verifier, state and nonce,
// stores them, and returns the URL to send the browser to.
func (c *Client) AuthorizeURL(ctx context.Context, opts AuthOptions) (string, error) {
	d, err := c.Discovery(ctx)
	if err != nil {
		return "", err
	}
	verifier, err := c.randomString(32)
	if err != nil {
		return "", err
	}
	state, err := c.randomString(16)
	if err != nil {
		return "", err
	}
	nonce, err := c.randomString(16)
	if err != nil {
		return "", err
	}
	sum := sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])

	scopes := opts.Scopes
	if len(scopes) == 0 {
		scopes = c.cfg.Scopes
	}
	if !containsWord(scopes, "openid") {
		scopes = append([]string{"openid"}, scopes...)
	}
	var p params
	p.add("response_type", "code")
	p.add("client_id", c.cfg.ClientID)
	p.add("redirect_uri", c.cfg.RedirectURI)
	p.add("scope", strings.Join(scopes, " "))
	p.add("state", state)
	p.add("nonce", nonce)
	p.add("code_challenge", challenge)
	p.add("code_challenge_method", "S256")
	p.addIf("prompt", opts.Prompt)
	if opts.MaxAge != nil {
		p.add("max_age", strconv.Itoa(*opts.MaxAge))
	}
	p.addIf("acr_values", opts.ACRValues)
	p.addIf("idp_hint", opts.IDPHint)
	p.addIf("login_hint", opts.LoginHint)
	for _, kv := range sortedParams(opts.Extra) {
		if !reservedParam(kv[0]) {
			p.add(kv[0], kv[1])
		}
	}

	c.op.Lock()
	defer c.op.Unlock()
	pending, err := c.loadPending(ctx)
	if err != nil {
		return "", err
	}
	dropOldest(pending, maxPending-1)
	pending[state] = map[string]any{
		"verifier":     verifier,
		"nonce":        nonce,
		"redirect_uri": c.cfg.RedirectURI,
		"app_state":    opts.AppState,
		"created":      c.deps.Clock.Now().UnixMilli(),
	}
	if err := c.deps.Store.Save(ctx, storePending, appendJSON(nil, pending)); err != nil {
		return "", newError(CodeConfig, "save pending login", err)
	}
	return withQuery(d.AuthorizationEndpoint, p), nil
}

func containsWord(list []string, w string) bool {
	for _, s := range list {
		if s == w {
			return true
		}
	}
	return false
}

// reservedParam reports the parameters Extra may not override.
func reservedParam(k string) bool {
	switch k {
	case "response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
		"code_challenge", "code_challenge_method":
		return true
	}
	return false
}

// IsCallback reports whether url looks like an authorization response for
// this client (it has a state and a code or an error).
func (c *Client) IsCallback(url string) bool {
	p := callbackParams(url)
	return p["state"] != "" && (p["code"] != "" || p["error"] != "") &&
		strings.HasPrefix(url, strings.SplitN(c.cfg.RedirectURI, "?", 2)[0])
}

// HandleCallback completes a login from the redirect URL the broker sent the
// browser to: it checks the state, exchanges the code (with the PKCE
// verifier) and verifies the ID token. It is idempotent: calling it again
// with the same URL (React StrictMode, a reload of the callback page) returns
// the session that the first call created.
func (c *Client) HandleCallback(ctx context.Context, callbackURL string) (*View, error) {
	p := callbackParams(callbackURL)
	state := p["state"]
	if state == "" {
		return nil, newError(CodeStateMismatch, "callback has no state", nil)
	}
	c.op.Lock()
	defer c.op.Unlock()

	if v, ok := c.sessionFromState(ctx, state); ok {
		return v, nil
	}
	pending, err := c.loadPending(ctx)
	if err != nil {
		return nil, err
	}
	rec, ok := pending[state].(map[string]any)
	if !ok {
		return nil, newError(CodeStateMismatch, "no login is waiting for this state", nil)
	}
	delete(pending, state)
	if err := c.deps.Store.Save(ctx, storePending, appendJSON(nil, pending)); err != nil {
		return nil, newError(CodeConfig, "save pending logins", err)
	}
	if e := p["error"]; e != "" {
		return nil, newError(e, p["error_description"], nil)
	}
	if p["code"] == "" {
		return nil, newError(CodeInvalidResponse, "callback has no code", nil)
	}
	if iss := p["iss"]; iss != "" && iss != c.cfg.Issuer {
		return nil, newError(CodeInvalidResponse, "callback iss "+iss+" is not the issuer", nil)
	}
	d, err := c.Discovery(ctx)
	if err != nil {
		return nil, err
	}
	if d.IssParameter && p["iss"] == "" {
		// RFC 9207 section 2.4: the broker says it sends iss, so a
		// response without it did not come from the broker.
		return nil, newError(CodeInvalidResponse, "callback has no iss, which the broker always sends", nil)
	}
	var form params
	form.add("grant_type", "authorization_code")
	form.add("code", p["code"])
	form.add("redirect_uri", str(rec, "redirect_uri"))
	form.add("client_id", c.cfg.ClientID)
	form.add("code_verifier", str(rec, "verifier"))
	tok, err := c.postForm(ctx, d.TokenEndpoint, form)
	if err != nil {
		return nil, err
	}
	s, err := c.sessionFromTokens(ctx, tok, nil, str(rec, "nonce"))
	if err != nil {
		return nil, err
	}
	s.State = state
	s.AppState = str(rec, "app_state")
	if err := c.setSession(ctx, s); err != nil {
		return nil, err
	}
	c.emit(EventLoggedIn, nil)
	v := c.View()
	return &v, nil
}

// sessionFromState returns the current session when it was created by the
// callback with this state (a repeated callback).
func (c *Client) sessionFromState(ctx context.Context, state string) (*View, bool) {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil || s.State != state {
		if stored, err := c.loadSession(ctx); err == nil && stored != nil && stored.State == state {
			c.mu.Lock()
			c.session, c.status = stored, StatusAuthenticated
			c.mu.Unlock()
			s = stored
		}
	}
	if s == nil || s.State != state {
		return nil, false
	}
	v := c.View()
	return &v, true
}

// sessionFromTokens validates a token response. prev is the session being
// refreshed (nil for a login); nonce is the expected nonce of a login.
func (c *Client) sessionFromTokens(ctx context.Context, tok map[string]any, prev *Session, nonce string) (*Session, error) {
	access := str(tok, "access_token")
	if access == "" {
		return nil, newError(CodeInvalidResponse, "token response has no access_token", nil)
	}
	if tt := str(tok, "token_type"); !strings.EqualFold(tt, "bearer") {
		return nil, newError(CodeInvalidResponse, "token_type "+tt+" is not Bearer", nil)
	}
	now := c.deps.Clock.Now()
	s := &Session{AccessToken: access, ReceivedAt: now, Scope: str(tok, "scope")}
	if exp, ok := num(tok, "expires_in"); ok && exp > 0 {
		s.ExpiresAt = now.Add(time.Duration(exp) * time.Second)
	} else {
		s.ExpiresAt = now.Add(5 * time.Minute)
	}
	s.RefreshToken = str(tok, "refresh_token")
	s.IDToken = str(tok, "id_token")
	if prev != nil {
		if s.RefreshToken == "" {
			s.RefreshToken = prev.RefreshToken
		}
		if s.Scope == "" {
			s.Scope = prev.Scope
		}
		s.State, s.AppState, s.Claims = prev.State, prev.AppState, prev.Claims
	}
	switch {
	case s.IDToken != "":
		check := idTokenCheck{nonce: nonce, accessToken: access}
		if prev != nil {
			check.subject = str(prev.Claims, "sub")
		}
		claims, err := c.verifyIDToken(ctx, s.IDToken, check)
		if err != nil {
			return nil, err
		}
		if prev != nil && nonce == "" {
			// A refreshed ID token keeps the login's auth_time semantics.
			if _, ok := claims["auth_time"]; !ok {
				if at, ok := prev.Claims["auth_time"]; ok {
					claims["auth_time"] = at
				}
			}
		}
		s.Claims = claims
	case prev != nil:
		s.IDToken = prev.IDToken
	default:
		return nil, newError(CodeInvalidResponse, "token response has no id_token", nil)
	}
	return s, nil
}

func (c *Client) loadSession(ctx context.Context) (*Session, error) {
	data, found, err := c.deps.Store.Load(ctx, storeSession)
	if err != nil {
		return nil, newError(CodeConfig, "load session", err)
	}
	if !found {
		return nil, nil
	}
	s, err := unmarshalSession(data)
	if err != nil {
		return nil, nil // unreadable: treat as logged out
	}
	return s, nil
}

// setSession stores s, makes it current and tells the other instances.
func (c *Client) setSession(ctx context.Context, s *Session) error {
	if err := c.deps.Store.Save(ctx, storeSession, s.marshal()); err != nil {
		return newError(CodeConfig, "save session", err)
	}
	c.mu.Lock()
	c.session, c.status, c.lastErr, c.retryAt = s, StatusAuthenticated, nil, time.Time{}
	c.mu.Unlock()
	c.notifyChanged()
	c.deps.Broadcaster.Broadcast(broadcastChanged)
	return nil
}

// clearSession forgets the session everywhere.
func (c *Client) clearSession(ctx context.Context) {
	_ = c.deps.Store.Delete(ctx, storeSession)
	c.mu.Lock()
	c.session, c.status, c.lastErr, c.retryAt = nil, StatusLoginRequired, nil, time.Time{}
	c.mu.Unlock()
	c.notifyChanged()
}

// Messages between client instances.
const (
	broadcastChanged   = "session-changed"
	broadcastLoggedOut = "logged-out"
)

// --- state ------------------------------------------------------------------

// Start loads the stored session. A session whose access token has expired is
// refreshed; a refresh token the broker refuses (expired, revoked, reused)
// yields StatusLoginRequired, not an error. An error is returned only when
// the broker could not be asked (network failure, broker down): the session
// is kept and the refresher retries.
func (c *Client) Start(ctx context.Context) (Status, error) {
	s, err := c.loadSession(ctx)
	if err != nil {
		return c.setLoginRequired(err), nil
	}
	if s == nil || (s.RefreshToken == "" && !c.fresh(s, 0)) {
		return c.setLoginRequired(nil), nil
	}
	c.mu.Lock()
	c.session, c.status = s, StatusAuthenticated
	c.mu.Unlock()
	c.notifyChanged()
	if c.fresh(s, c.margin(s)) {
		return StatusAuthenticated, nil
	}
	if _, err := c.AccessToken(ctx, 0); err != nil {
		if isTransient(err) {
			return c.Status(), err
		}
	}
	return c.Status(), nil
}

func (c *Client) setLoginRequired(err error) Status {
	c.mu.Lock()
	c.session, c.status, c.lastErr = nil, StatusLoginRequired, err
	c.mu.Unlock()
	c.notifyChanged()
	return StatusLoginRequired
}

// Status returns the current login state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Session returns a copy of the current session, or nil.
func (c *Client) Session() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	s := *c.session
	return &s
}

// View returns what the page may know about the session.
func (c *Client) View() View {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := View{Status: c.status, Error: c.lastErr}
	if s := c.session; s != nil {
		v.User = s.Claims
		v.Scope = s.Scope
		v.ExpiresAt = s.ExpiresAt
		v.AuthTime = s.AuthTime()
		v.AppState = s.AppState
	}
	return v
}

// margin is how long before expiry the access token of s counts as stale.
func (c *Client) margin(s *Session) time.Duration {
	m := c.cfg.RefreshBefore
	if life := s.ExpiresAt.Sub(s.ReceivedAt); life > 0 && life/4 < m {
		m = life / 4
	}
	return m
}

func (c *Client) fresh(s *Session, minValidity time.Duration) bool {
	return s != nil && s.AccessToken != "" && s.ExpiresAt.Sub(c.deps.Clock.Now()) > minValidity
}

// --- tokens -----------------------------------------------------------------

// AccessToken returns an access token valid for at least minValidity (the
// refresh margin when zero), refreshing it first when needed. Concurrent
// calls, in this instance or in others sharing the Locker, cause a single
// refresh.
func (c *Client) AccessToken(ctx context.Context, minValidity time.Duration) (string, error) {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil {
		return "", newError(CodeLoginRequired, "not logged in", nil)
	}
	if minValidity <= 0 {
		minValidity = c.margin(s)
	}
	if c.fresh(s, minValidity) {
		return s.AccessToken, nil
	}
	return c.refresh(ctx, s.AccessToken, minValidity, false)
}

// Renew is for an access token an API refused (HTTP 401): it refreshes
// unless the current access token is no longer rejected, in which case
// someone else already renewed it and that token is returned. Many
// concurrent calls with the same rejected token cause one refresh.
func (c *Client) Renew(ctx context.Context, rejected string) (string, error) {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil {
		return "", newError(CodeLoginRequired, "not logged in", nil)
	}
	if rejected == "" {
		rejected = s.AccessToken
	}
	return c.refresh(ctx, rejected, 0, true)
}

// Refresh renews the tokens now.
func (c *Client) Refresh(ctx context.Context) error {
	_, err := c.Renew(ctx, "")
	return err
}

// refresh runs the refresh_token grant and returns the new access token.
// It does nothing when, once it holds the lock, the session's access token
// is no longer seen (another caller or instance renewed it meanwhile), or,
// unless force is set, when the token is still valid for minValidity.
func (c *Client) refresh(ctx context.Context, seen string, minValidity time.Duration, force bool) (string, error) {
	c.op.Lock()
	defer c.op.Unlock()
	var token string
	err := c.deps.Locker.WithLock(ctx, "bridgekeeper-refresh:"+c.cfg.ClientID, func(ctx context.Context) error {
		// Another instance may have refreshed (or logged out) while we waited.
		s, err := c.loadSession(ctx)
		if err != nil {
			return err
		}
		if s == nil {
			c.clearSession(ctx)
			return newError(CodeLoginRequired, "logged out", nil)
		}
		c.mu.Lock()
		c.session = s
		c.mu.Unlock()
		token = s.AccessToken
		if s.AccessToken != seen && c.fresh(s, 0) {
			return nil // renewed by someone else
		}
		if !force && c.fresh(s, minValidity) {
			return nil
		}
		if s.RefreshToken == "" {
			c.expire(ctx, newError(CodeLoginRequired, "no refresh token", nil))
			return newError(CodeLoginRequired, "no refresh token", nil)
		}
		d, err := c.Discovery(ctx)
		if err != nil {
			return c.refreshFailed(err)
		}
		var form params
		form.add("grant_type", "refresh_token")
		form.add("refresh_token", s.RefreshToken)
		form.add("client_id", c.cfg.ClientID)
		tok, err := c.postForm(ctx, d.TokenEndpoint, form)
		if err != nil {
			if isTransient(err) {
				return c.refreshFailed(err)
			}
			// invalid_grant and friends: the session is over.
			c.expire(ctx, err)
			return newError(CodeLoginRequired, "the broker refused the refresh token", err)
		}
		ns, err := c.sessionFromTokens(ctx, tok, s, "")
		if err != nil {
			return c.refreshFailed(err)
		}
		if err := c.setSession(ctx, ns); err != nil {
			return err
		}
		token = ns.AccessToken
		c.emit(EventTokenRefreshed, nil)
		return nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

func (c *Client) refreshFailed(err error) error {
	c.mu.Lock()
	c.lastErr = err
	c.retryAt = c.deps.Clock.Now().Add(15 * time.Second)
	c.mu.Unlock()
	c.notifyChanged()
	c.emit(EventError, err)
	return err
}

func (c *Client) expire(ctx context.Context, cause error) {
	c.clearSession(ctx)
	c.deps.Broadcaster.Broadcast(broadcastChanged)
	c.emit(EventSessionExpired, cause)
}

// NextRefresh tells when the access token should be renewed; false when
// there is nothing to renew.
func (c *Client) NextRefresh() (time.Time, bool) {
	c.mu.Lock()
	s, retryAt := c.session, c.retryAt
	c.mu.Unlock()
	if s == nil || s.RefreshToken == "" {
		return time.Time{}, false
	}
	at := s.ExpiresAt.Add(-c.margin(s))
	if retryAt.After(at) {
		at = retryAt
	}
	return at, true
}

// RunRefresher renews the access token before it expires until ctx ends.
// A value on wake (the page became visible, the device woke up) makes it
// check at once, since timers may not have fired in the background.
func (c *Client) RunRefresher(ctx context.Context, wake <-chan struct{}) {
	for {
		var timer <-chan time.Time
		if at, ok := c.NextRefresh(); ok {
			timer = c.deps.Clock.After(max(0, at.Sub(c.deps.Clock.Now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-c.changed:
			continue
		case <-wake:
		case <-timer:
		}
		if at, ok := c.NextRefresh(); ok && !c.deps.Clock.Now().Before(at) {
			_, _ = c.AccessToken(ctx, 0) // failures are events
		}
	}
}

// HandleBroadcast applies a message from another client instance.
func (c *Client) HandleBroadcast(ctx context.Context, message string) {
	switch message {
	case broadcastChanged:
		s, err := c.loadSession(ctx)
		if err != nil {
			return
		}
		c.mu.Lock()
		had := c.session != nil
		if s == nil {
			c.session, c.status = nil, StatusLoginRequired
		} else {
			c.session, c.status, c.lastErr = s, StatusAuthenticated, nil
		}
		c.mu.Unlock()
		c.notifyChanged()
		switch {
		case s != nil:
			c.emit(EventTokenRefreshed, nil)
		case had:
			c.emit(EventSessionExpired, nil)
		}
	case broadcastLoggedOut:
		c.mu.Lock()
		c.session, c.status, c.lastErr = nil, StatusLoginRequired, nil
		c.mu.Unlock()
		c.notifyChanged()
		c.emit(EventLoggedOut, nil)
	}
}

// --- userinfo and logout ----------------------------------------------------

// UserInfo calls the broker's userinfo endpoint with the access token.
func (c *Client) UserInfo(ctx context.Context) (map[string]any, error) {
	d, err := c.Discovery(ctx)
	if err != nil {
		return nil, err
	}
	if d.UserinfoEndpoint == "" {
		return nil, newError(CodeInvalidResponse, "the broker has no userinfo endpoint", nil)
	}
	at, err := c.AccessToken(ctx, 0)
	if err != nil {
		return nil, err
	}
	m, err := c.getJSON(ctx, d.UserinfoEndpoint, at)
	if err != nil {
		return nil, err
	}
	if s := c.Session(); s != nil && str(m, "sub") != str(s.Claims, "sub") {
		return nil, newError(CodeInvalidResponse, "userinfo sub does not match the ID token", nil)
	}
	return m, nil
}

// Logout revokes the refresh token, forgets the session in every instance
// and returns the broker's end-session URL to send the browser to ("" when
// the broker has none). Revocation failures do not stop the logout.
func (c *Client) Logout(ctx context.Context, opts LogoutOptions) (string, error) {
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil {
		s, _ = c.loadSession(ctx)
	}
	d, derr := c.Discovery(ctx)
	if s != nil && derr == nil && d.RevocationEndpoint != "" {
		for _, t := range [][2]string{{s.RefreshToken, "refresh_token"}, {s.AccessToken, "access_token"}} {
			if t[0] == "" {
				continue
			}
			var form params
			form.add("token", t[0])
			form.add("token_type_hint", t[1])
			form.add("client_id", c.cfg.ClientID)
			resp, err := c.deps.Transport.Do(ctx, Request{
				Method: "POST", URL: d.RevocationEndpoint, Body: form.encode(),
				Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			})
			if err == nil && resp.Status != 200 {
				err = newError(CodeInvalidResponse, "revocation answered HTTP "+strconv.Itoa(resp.Status), nil)
			}
			if err != nil {
				c.emit(EventError, newError(CodeNetwork, "revoke "+t[1], err))
			}
		}
	}
	c.clearSession(ctx)
	c.deps.Broadcaster.Broadcast(broadcastLoggedOut)
	c.emit(EventLoggedOut, nil)
	if derr != nil {
		return "", derr
	}
	if d.EndSessionEndpoint == "" {
		return "", nil
	}
	var p params
	if s != nil {
		p.addIf("id_token_hint", s.IDToken)
	}
	p.add("client_id", c.cfg.ClientID)
	redirect := opts.PostLogoutRedirectURI
	if redirect == "" {
		redirect = c.cfg.PostLogoutRedirectURI
	}
	p.addIf("post_logout_redirect_uri", redirect)
	p.addIf("state", opts.State)
	return withQuery(d.EndSessionEndpoint, p), nil
}
