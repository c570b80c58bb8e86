package oidc

import (
	"context"
	"time"
)

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
		v.TokenType = s.TokenType
		if v.TokenType == "" {
			v.TokenType = tokenTypeBearer
		}
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
