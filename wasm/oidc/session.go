package oidc

import (
	"slices"
	"strings"
	"time"
)

// Session is what the client holds for a logged-in user. It never leaves the
// worker as a whole: the page gets a View.
type Session struct {
	AccessToken string
	// TokenType is "DPoP" when the tokens are bound to the DPoP key whose
	// thumbprint is JKT, else "Bearer".
	TokenType    string
	JKT          string
	RefreshToken string
	IDToken      string
	Scope        string
	// ExpiresAt is when the access token expires; ReceivedAt when it was issued to us.
	ExpiresAt  time.Time
	ReceivedAt time.Time
	// Claims are the ID token's claims (sub, email, name, auth_time, …).
	Claims map[string]any
	// State is the state of the authorization response that started the
	// session; AppState the application's value passed to AuthorizeURL.
	State    string
	AppState string
}

// AuthTime is when the user last authenticated at the broker (auth_time, or
// iat when the broker sent no auth_time).
func (s *Session) AuthTime() time.Time {
	if f, ok := num(s.Claims, "auth_time"); ok {
		return time.Unix(int64(f), 0)
	}
	if f, ok := num(s.Claims, "iat"); ok {
		return time.Unix(int64(f), 0)
	}
	return time.Time{}
}

// HasScope reports whether the access token was granted scope.
func (s *Session) HasScope(scope string) bool {
	return slices.Contains(strings.Fields(s.Scope), scope)
}

func (s *Session) marshal() []byte {
	m := map[string]any{
		"access_token":  s.AccessToken,
		"token_type":    s.TokenType,
		"jkt":           s.JKT,
		"refresh_token": s.RefreshToken,
		"id_token":      s.IDToken,
		"scope":         s.Scope,
		"expires_at":    s.ExpiresAt.UnixMilli(),
		"received_at":   s.ReceivedAt.UnixMilli(),
		"claims":        s.Claims,
		"state":         s.State,
		"app_state":     s.AppState,
	}
	return appendJSON(nil, m)
}

func unmarshalSession(data []byte) (*Session, error) {
	m, err := parseJSONObject(data)
	if err != nil {
		return nil, err
	}
	claims, _ := m["claims"].(map[string]any)
	exp, _ := num(m, "expires_at")
	rec, _ := num(m, "received_at")
	return &Session{
		AccessToken:  str(m, "access_token"),
		TokenType:    str(m, "token_type"),
		JKT:          str(m, "jkt"),
		RefreshToken: str(m, "refresh_token"),
		IDToken:      str(m, "id_token"),
		Scope:        str(m, "scope"),
		ExpiresAt:    time.UnixMilli(int64(exp)),
		ReceivedAt:   time.UnixMilli(int64(rec)),
		Claims:       claims,
		State:        str(m, "state"),
		AppState:     str(m, "app_state"),
	}, nil
}

// Status is the client's login state.
type Status string

const (
	// StatusLoading: Start has not finished.
	StatusLoading Status = "loading"
	// StatusAuthenticated: a session with a valid or refreshable token.
	StatusAuthenticated Status = "authenticated"
	// StatusLoginRequired: no session, or the broker refused to refresh it.
	StatusLoginRequired Status = "login_required"
)

// View is the part of the session the page may see: no tokens.
type View struct {
	Status    Status
	User      map[string]any
	Scope     string
	ExpiresAt time.Time
	AuthTime  time.Time
	AppState  string
	// TokenType is how the access token is presented: "DPoP" (with a proof
	// from the client's key) or "Bearer".
	TokenType string
	// Error is the last error that did not end the session (a network
	// failure during refresh, say); nil when the last operation succeeded.
	Error error
}

// ToMap converts the view to a JSON-friendly map (times in Unix milliseconds).
func (v View) ToMap() map[string]any {
	m := map[string]any{
		"status":          string(v.Status),
		"isAuthenticated": v.Status == StatusAuthenticated,
		"user":            v.User,
		"scope":           v.Scope,
		"appState":        v.AppState,
	}
	if v.TokenType != "" {
		m["tokenType"] = v.TokenType
	}
	if !v.ExpiresAt.IsZero() {
		m["expiresAt"] = v.ExpiresAt.UnixMilli()
	}
	if !v.AuthTime.IsZero() {
		m["authTime"] = v.AuthTime.UnixMilli()
	}
	if v.Error != nil {
		m["error"] = ErrorMap(v.Error)
	}
	return m
}

// ErrorMap converts an error to {code, message} for the page.
func ErrorMap(err error) map[string]any {
	code := ErrorCode(err)
	if code == "" {
		code = "error"
	}
	m := map[string]any{"code": code, "message": err.Error()}
	if e, ok := err.(*Error); ok && e.Description != "" {
		m["description"] = e.Description
	}
	return m
}

// MarshalJSON-free helper used by the bindings: JSON text of any value built
// from maps, slices, strings, numbers and booleans.
func JSON(v any) string { return string(appendJSON(nil, v)) }

// ParseJSON decodes a JSON document into generic values.
func ParseJSON(data []byte) (any, error) { return parseJSON(data) }
