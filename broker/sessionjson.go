package broker

import (
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// MarshalJSON writes the session as encoding/json writes its fields by
// reflection (the stored form; reading it back is still encoding/json's),
// byte for byte (TestSessionJSONAsReflection): the token store encodes the
// session of every code and token it records.
func (s *session) MarshalJSON() ([]byte, error) {
	w := jsonWriter{b: make([]byte, 0, 1024)}
	w.raw(`{"oidc":`)
	w.defaultSession(s.DefaultSession)
	w.str(`,"client_id":`, s.ClientID)
	w.strOmitEmpty(`,"idp_sub":`, s.IDPSubject)
	w.strOmitEmpty(`,"dpop_jkt":`, s.DPoPJKT)
	w.strOmitEmpty(`,"cnf_jkt":`, s.AccessJKT)
	w.raw("}")
	return w.b, w.err
}

// jsonWriter appends JSON, keeping the first error.
type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) raw(s string) { w.b = append(w.b, s...) }

// str writes name (the separator, the quoted key and the colon) and v.
func (w *jsonWriter) str(name, v string) { writeJSON(w, name, v, appendJSONString) }

func (w *jsonWriter) strOmitEmpty(name, v string) {
	if v != "" {
		w.str(name, v)
	}
}

func (w *jsonWriter) strs(name string, v []string) { writeJSON(w, name, v, appendJSONStrings) }

func (w *jsonWriter) object(name string, v map[string]any) { writeJSON(w, name, v, appendJSONObject) }

// writeJSON writes name and v by appendV, unless an error came first.
func writeJSON[T any](w *jsonWriter, name string, v T, appendV func([]byte, T) ([]byte, error)) {
	w.raw(name)
	if w.err == nil {
		w.b, w.err = appendV(w.b, v)
	}
}

// time writes t as time.Time's MarshalJSON does (RFC 3339 with fractional
// seconds; an error for what RFC 3339 cannot say).
func (w *jsonWriter) time(name string, t time.Time) {
	w.raw(name)
	if w.err != nil {
		return
	}
	w.b = append(w.b, '"')
	if w.b, w.err = t.AppendText(w.b); w.err == nil {
		w.b = append(w.b, '"')
	}
}

func (w *jsonWriter) defaultSession(s *openid.DefaultSession) {
	if s == nil {
		w.raw("null")
		return
	}
	w.raw(`{"id_token_claims":`)
	w.idTokenClaims(s.Claims)
	if s.Headers == nil {
		w.raw(`,"headers":null`)
	} else {
		w.object(`,"headers":{"extra":`, s.Headers.Extra)
		w.raw("}")
	}
	w.expiries(`,"expires_at":`, s.ExpiresAt)
	w.str(`,"username":`, s.Username)
	w.str(`,"subject":`, s.Subject)
	w.raw("}")
}

func (w *jsonWriter) idTokenClaims(c *jwt.IDTokenClaims) {
	if c == nil {
		w.raw("null")
		return
	}
	w.str(`{"jti":`, c.JTI)
	w.str(`,"iss":`, c.Issuer)
	w.str(`,"sub":`, c.Subject)
	w.strs(`,"aud":`, c.Audience)
	w.str(`,"nonce":`, c.Nonce)
	w.time(`,"exp":`, c.ExpiresAt)
	w.time(`,"iat":`, c.IssuedAt)
	w.time(`,"rat":`, c.RequestedAt)
	w.time(`,"auth_time":`, c.AuthTime)
	w.str(`,"at_hash":`, c.AccessTokenHash)
	w.str(`,"acr":`, c.AuthenticationContextClassReference)
	w.strs(`,"amr":`, c.AuthenticationMethodsReferences)
	w.str(`,"c_hash":`, c.CodeHash)
	w.object(`,"ext":`, c.Extra)
	w.raw("}")
}

// expiries writes the expiry times by token type, sorted as encoding/json
// sorts map keys.
func (w *jsonWriter) expiries(name string, m map[fosite.TokenType]time.Time) {
	if m == nil {
		w.raw(name + "null")
		return
	}
	var buf [8]fosite.TokenType
	types := buf[:0]
	for t := range m {
		types = append(types, t)
	}
	slices.Sort(types)
	w.raw(name)
	for i, t := range types {
		sep := ","
		if i == 0 {
			sep = "{"
		}
		w.str(sep, string(t))
		w.time(":", m[t])
	}
	if len(types) == 0 {
		w.raw("{")
	}
	w.raw("}")
}
