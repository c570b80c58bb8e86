package broker

import (
	"maps"
	"slices"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// cloneDefaultSession deep-copies fosite's OpenID Connect session: its
// value fields by the struct copy, its maps, slices and pointers one by one
// (TestSessionCloneShares finds a reference field left shared).
func cloneDefaultSession(s *openid.DefaultSession) *openid.DefaultSession {
	if s == nil {
		return nil
	}
	c := *s
	c.Claims = cloneIDTokenClaims(s.Claims)
	c.Headers = cloneHeaders(s.Headers)
	c.ExpiresAt = maps.Clone(s.ExpiresAt) // time.Time values
	return &c
}

func cloneIDTokenClaims(s *jwt.IDTokenClaims) *jwt.IDTokenClaims {
	if s == nil {
		return nil
	}
	c := *s
	c.Audience = slices.Clone(s.Audience)
	c.AuthenticationMethodsReferences = slices.Clone(s.AuthenticationMethodsReferences)
	c.Extra = cloneClaims(s.Extra)
	return &c
}

func cloneHeaders(s *jwt.Headers) *jwt.Headers {
	if s == nil {
		return nil
	}
	return &jwt.Headers{Extra: cloneClaims(s.Extra)}
}

// cloneClaims deep-copies a claims map (nil stays nil).
func cloneClaims(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneClaim(v)
	}
	return c
}

// cloneClaim deep-copies a claim's value: the JSON kinds (what a session
// read from storage holds) and the typed slices and maps the broker puts
// in claims directly; anything else by reflection, as before.
func cloneClaim(v any) any {
	switch v := v.(type) {
	case nil, string, bool, float64, int64, int, int32, uint64:
		return v
	case map[string]any:
		return cloneClaims(v)
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = cloneClaim(e)
		}
		return c
	case []string:
		return slices.Clone(v)
	case map[string]string:
		return maps.Clone(v)
	default:
		return deepcopy.Copy(v)
	}
}
