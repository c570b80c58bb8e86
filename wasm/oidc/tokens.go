package oidc

import (
	"context"
	"time"
)

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
		// A refresh token bound to the key needs a proof from it, whatever
		// the configuration says now.
		jkt := ""
		if s.JKT != "" || c.dpopOn(d) {
			if _, jkt, err = c.publicJWK(ctx); err != nil {
				return c.refreshFailed(err)
			}
		}
		tok, err := c.postToken(ctx, d, form, jkt != "")
		if err != nil {
			if isTransient(err) {
				return c.refreshFailed(err)
			}
			// invalid_grant and friends: the session is over.
			c.expire(ctx, err)
			return newError(CodeLoginRequired, "the broker refused the refresh token", err)
		}
		ns, err := c.sessionFromTokens(ctx, tok, s, "", jkt)
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
	if c.deps.ProofKey != nil {
		// The instance that logged out rotated the DPoP key: read it again.
		c.deps.ProofKey.Forget()
	}
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
