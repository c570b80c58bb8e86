package oidc

import (
	"context"
	"encoding/base64"
	"io"
	"strconv"
	"strings"
	"time"
)

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
	jkt := ""
	if c.dpopOn(d) {
		// RFC 9449 section 10: the code is bound to the key, so only this
		// browser's key can redeem it.
		if _, jkt, err = c.publicJWK(ctx); err != nil {
			return "", err
		}
		p.add("dpop_jkt", jkt)
	}
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
		"dpop_jkt":     jkt,
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
		"code_challenge", "code_challenge_method", "dpop_jkt":
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
	jkt := ""
	if str(rec, "dpop_jkt") != "" || c.dpopOn(d) {
		if _, jkt, err = c.publicJWK(ctx); err != nil {
			return nil, err
		}
	}
	tok, err := c.postToken(ctx, d, form, jkt != "")
	if err != nil {
		return nil, err
	}
	s, err := c.sessionFromTokens(ctx, tok, nil, str(rec, "nonce"), jkt)
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
// refreshed (nil for a login); nonce is the expected nonce of a login; jkt
// is the thumbprint of the DPoP key whose proof the request carried ("" for
// none).
func (c *Client) sessionFromTokens(ctx context.Context, tok map[string]any, prev *Session, nonce, jkt string) (*Session, error) {
	access := str(tok, "access_token")
	if access == "" {
		return nil, newError(CodeInvalidResponse, "token response has no access_token", nil)
	}
	// RFC 9449 section 5: token_type DPoP says the tokens are bound to the
	// key; Bearer that the broker did not bind them (it may ignore DPoP).
	tt := str(tok, "token_type")
	switch {
	case strings.EqualFold(tt, tokenTypeBearer):
		tt, jkt = tokenTypeBearer, ""
	case strings.EqualFold(tt, tokenTypeDPoP) && jkt != "":
		tt = tokenTypeDPoP
	default:
		return nil, newError(CodeInvalidResponse, "token_type "+tt+" is not what the request asked for", nil)
	}
	now := c.deps.Clock.Now()
	s := &Session{AccessToken: access, TokenType: tt, JKT: jkt, ReceivedAt: now, Scope: str(tok, "scope")}
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
