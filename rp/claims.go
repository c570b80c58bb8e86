package rp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Claims are the verified claims of a token. The registered claims are
// decoded into fields; any other claim is read with Claim or Map.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time // zero when the token has no iat
	NotBefore time.Time // zero when the token has no nbf
	ID        string    // jti
	ClientID  string    // client_id (RFC 9068)
	Scopes    []string  // scope split on spaces (or an scp array)
	// JKT is cnf.jkt (RFC 9449 §6.1): the thumbprint of the DPoP key the
	// token is bound to; empty for a bearer token.
	JKT string

	raw json.RawMessage
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool {
	return slices.Contains(c.Scopes, scope)
}

// HasScopes reports whether the token was granted every one of scopes.
func (c *Claims) HasScopes(scopes ...string) bool {
	for _, s := range scopes {
		if !c.HasScope(s) {
			return false
		}
	}
	return true
}

// HasAudience reports whether aud lists audience.
func (c *Claims) HasAudience(audience string) bool {
	return slices.Contains(c.Audience, audience)
}

// Raw returns the token's payload: the JSON object of all its claims. For
// Claims built by hand rather than by Verify, it encodes the fields.
func (c *Claims) Raw() json.RawMessage {
	if c.raw != nil {
		return c.raw
	}
	p := wirePayload{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, ID: c.ID,
		ClientID: c.ClientID, Scope: strings.Join(c.Scopes, " ")}
	if c.JKT != "" {
		p.Confirmation = &confirmation{JKT: c.JKT}
	}
	for _, d := range []struct {
		t   time.Time
		out **int64
	}{{c.ExpiresAt, &p.ExpiresAt}, {c.IssuedAt, &p.IssuedAt}, {c.NotBefore, &p.NotBefore}} {
		if !d.t.IsZero() {
			sec := d.t.Unix()
			*d.out = &sec
		}
	}
	b, _ := json.Marshal(p) // cannot fail: strings and numbers only
	return b
}

// MarshalJSON returns the token's payload as it was signed.
func (c *Claims) MarshalJSON() ([]byte, error) {
	return c.Raw(), nil
}

// wirePayload encodes hand-built Claims.
type wirePayload struct {
	Issuer    string   `json:"iss,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	ExpiresAt *int64   `json:"exp,omitempty"`
	IssuedAt  *int64   `json:"iat,omitempty"`
	NotBefore *int64   `json:"nbf,omitempty"`
	ID        string   `json:"jti,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Scope     string   `json:"scope,omitempty"`

	Confirmation *confirmation `json:"cnf,omitempty"`
}

// confirmation is the cnf claim (RFC 7800); only jkt is read.
type confirmation struct {
	JKT string `json:"jkt"`
}

// Claim decodes the claim called name into v. It reports false when the
// token has no such claim.
func (c *Claims) Claim(name string, v any) (bool, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(c.Raw(), &all); err != nil {
		return false, fmt.Errorf("decode claims: %w", err)
	}
	raw, ok := all[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode claim %q: %w", name, err)
	}
	return true, nil
}

// Map returns all claims, numbers as json.Number.
func (c *Claims) Map() (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(c.Raw()))
	dec.UseNumber()
	var all map[string]any
	if err := dec.Decode(&all); err != nil {
		return nil, fmt.Errorf("decode claims: %w", err)
	}
	return all, nil
}

// payload is the wire form of the registered claims.
type payload struct {
	Issuer    string      `json:"iss"`
	Subject   string      `json:"sub"`
	Audience  audience    `json:"aud"`
	ExpiresAt numericDate `json:"exp"`
	IssuedAt  numericDate `json:"iat"`
	NotBefore numericDate `json:"nbf"`
	ID        string      `json:"jti"`
	ClientID  string      `json:"client_id"`
	Scope     string      `json:"scope"`
	Scp       []string    `json:"scp"`
	JKT       string      // cnf.jkt
}

func parseClaims(raw []byte) (*Claims, error) {
	p, err := scanPayload(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	c := &Claims{
		Issuer:    p.Issuer,
		Subject:   p.Subject,
		Audience:  p.Audience,
		ExpiresAt: p.ExpiresAt.time(),
		IssuedAt:  p.IssuedAt.time(),
		NotBefore: p.NotBefore.time(),
		ID:        p.ID,
		ClientID:  p.ClientID,
		JKT:       p.JKT,
		raw:       raw,
	}
	if p.Scope != "" {
		c.Scopes = strings.Fields(p.Scope)
	} else {
		c.Scopes = p.Scp
	}
	return c, nil
}

// audience accepts a single string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if s, ok := plainJSONString(b); ok {
		*a = audience{s}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("aud: %w", err)
	}
	*a = list
	return nil
}

// plainJSONString decodes a JSON string without escapes, the common case,
// without going through the reflection-based decoder.
func plainJSONString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(inner), true
}

// numericDate is seconds since the epoch, integer or not (RFC 7519).
type numericDate struct {
	t   time.Time
	set bool
}

func (n *numericDate) UnmarshalJSON(b []byte) error {
	d, err := parseNumericDate(string(b))
	if err != nil {
		return err
	}
	*n = d
	return nil
}

// parseNumericDate reads a JSON number of seconds; null is no date.
func parseNumericDate(s string) (numericDate, error) {
	if s == "null" {
		return numericDate{}, nil
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil && sec >= 0 && sec <= 1e11 {
		return numericDate{t: time.Unix(sec, 0), set: true}, nil
	}
	f, err := json.Number(s).Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return numericDate{}, fmt.Errorf("bad NumericDate %s", s)
	}
	sec, frac := math.Modf(f)
	return numericDate{t: time.Unix(int64(sec), int64(frac*1e9)), set: true}, nil
}

func (n numericDate) time() time.Time {
	if !n.set {
		return time.Time{}
	}
	return n.t
}
