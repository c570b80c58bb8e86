package oidc

import (
	"context"
	"strconv"
)

// UserInfo calls the broker's userinfo endpoint with the access token.
func (c *Client) UserInfo(ctx context.Context) (map[string]any, error) {
	d, err := c.Discovery(ctx)
	if err != nil {
		return nil, err
	}
	if d.UserinfoEndpoint == "" {
		return nil, newError(CodeInvalidResponse, "the broker has no userinfo endpoint", nil)
	}
	_, h, err := c.AuthHeaders(ctx, "GET", d.UserinfoEndpoint, "")
	if err != nil {
		return nil, err
	}
	req := Request{Method: "GET", URL: d.UserinfoEndpoint, Header: h}
	h["Accept"] = "application/json"
	resp, err := c.deps.Transport.Do(ctx, req)
	if err != nil {
		return nil, newError(CodeNetwork, req.Method+" "+req.URL, err)
	}
	if nonce := nonceChallenge(resp); nonce != "" {
		// RFC 9449 section 9: the server wants a nonce; once, with it.
		if _, h, err = c.AuthHeaders(ctx, "GET", d.UserinfoEndpoint, nonce); err != nil {
			return nil, err
		}
		h["Accept"] = "application/json"
		req.Header = h
		if resp, err = c.deps.Transport.Do(ctx, req); err != nil {
			return nil, newError(CodeNetwork, req.Method+" "+req.URL, err)
		}
	}
	c.noteNonce(req.URL, resp.Header["dpop-nonce"])
	m, err := c.decode(req, resp)
	if err != nil {
		return nil, err
	}
	if s := c.Session(); s != nil && str(m, "sub") != str(s.Claims, "sub") {
		return nil, newError(CodeInvalidResponse, "userinfo sub does not match the ID token", nil)
	}
	return m, nil
}

// Logout revokes the refresh token, forgets the session in every instance,
// replaces the DPoP key with a new one, and returns the broker's end-session URL to send the browser to ("" when
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
	if c.deps.ProofKey != nil && ((s != nil && s.JKT != "") || (derr == nil && c.dpopOn(d))) {
		// The next user of this browser gets a new key: nothing signed
		// with the old one (a proof an XSS made in advance) works for
		// the next session.
		if err := c.deps.ProofKey.Rotate(ctx); err != nil {
			c.emit(EventError, newError(CodeDPoPKey, "rotate the DPoP key", err))
		}
	}
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
