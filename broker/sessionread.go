package broker

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// errNotFast is the session reader's answer to anything it does not read
// exactly as encoding/json would: the caller then decodes by reflection.
var errNotFast = errors.New("session JSON: not the stored shape")

// UnmarshalJSON reads a stored session. The token store decodes the
// session of every code and refresh token it loads, and encoding/json's
// reflection cost about 4 % of a refresh. A session as the broker stores
// it (the field names exactly, values of the fields' kinds) into a fresh
// session (newSession, or zero) is read by sessionReader; anything else —
// other names, which encoding/json matches ignoring case, other kinds,
// a session already filled — by encoding/json, as before
// (TestSessionReadAsReflection, FuzzSessionRead).
func (s *session) UnmarshalJSON(data []byte) error {
	if t, ok := freshCopy(s); ok {
		r := sessionReader{data: data}
		if err := r.session(t); err == nil && r.end() {
			*s = *t
			return nil
		}
	}
	return json.Unmarshal(data, (*sessionFields)(s))
}

// sessionFields is session without its methods, for encoding/json.
type sessionFields session

// freshCopy returns an empty session shaped like s (the same parts
// allocated), or false when s holds anything (encoding/json would merge
// the stored session into it).
func freshCopy(s *session) (*session, bool) {
	if s.ClientID != "" || s.IDPSubject != "" || s.AccessAudience != nil || s.GrantScopes != nil || s.DPoPJKT != "" || s.AccessJKT != "" {
		return nil, false
	}
	t := &session{}
	d := s.DefaultSession
	if d == nil {
		return t, true
	}
	if d.ExpiresAt != nil || d.Username != "" || d.Subject != "" ||
		(d.Claims != nil && !isZeroClaims(d.Claims)) || (d.Headers != nil && d.Headers.Extra != nil) {
		return nil, false
	}
	t.DefaultSession = &openid.DefaultSession{}
	if d.Claims != nil {
		t.Claims = &jwt.IDTokenClaims{}
	}
	if d.Headers != nil {
		t.Headers = &jwt.Headers{}
	}
	return t, true
}

func isZeroClaims(c *jwt.IDTokenClaims) bool { return reflect.ValueOf(c).Elem().IsZero() }

// sessionReader reads JSON that encoding/json has already checked (it
// hands UnmarshalJSON valid JSON only); any surprise is errNotFast.
type sessionReader struct {
	data []byte
	i    int
}

func (r *sessionReader) ws() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (r *sessionReader) end() bool {
	r.ws()
	return r.i == len(r.data)
}

// peek returns the next byte after white space (0 at the end).
func (r *sessionReader) peek() byte {
	r.ws()
	if r.i < len(r.data) {
		return r.data[r.i]
	}
	return 0
}

func (r *sessionReader) lit(s string) bool {
	r.ws()
	if len(r.data)-r.i >= len(s) && string(r.data[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// object reads an object, calling field for each member with the reader
// before its value.
func (r *sessionReader) object(field func(name string) error) error {
	if !r.lit("{") {
		return errNotFast
	}
	if r.lit("}") {
		return nil
	}
	for {
		name, err := r.str()
		if err != nil || !r.lit(":") {
			return errNotFast
		}
		if err := field(name); err != nil {
			return err
		}
		if r.lit("}") {
			return nil
		}
		if !r.lit(",") {
			return errNotFast
		}
	}
}

// rawString returns the next string token, quotes included.
func (r *sessionReader) rawString() ([]byte, bool, error) {
	if r.peek() != '"' {
		return nil, false, errNotFast
	}
	start, plain := r.i, true
	for j := start + 1; j < len(r.data); j++ {
		switch c := r.data[j]; {
		case c == '\\':
			plain = false
			j++
		case c == '"':
			r.i = j + 1
			return r.data[start:r.i], plain, nil
		case c < 0x20 || c >= 0x80:
			plain = false
		}
	}
	return nil, false, errNotFast
}

func (r *sessionReader) str() (string, error) {
	raw, plain, err := r.rawString()
	if err != nil {
		return "", err
	}
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil { // escapes, UTF-8 repair
		return "", errNotFast
	}
	return s, nil
}

// strInto reads a string field (null leaves it).
func (r *sessionReader) strInto(p *string) error {
	if r.lit("null") {
		return nil
	}
	s, err := r.str()
	*p = s
	return err
}

// strs reads a []string field (null is nil, [] empty).
func (r *sessionReader) strs(p *[]string) error {
	if r.lit("null") {
		*p = nil
		return nil
	}
	if !r.lit("[") {
		return errNotFast
	}
	list := make([]string, 0, 2)
	if !r.lit("]") {
		for {
			s, err := r.str()
			if err != nil {
				return err
			}
			list = append(list, s)
			if r.lit("]") {
				break
			}
			if !r.lit(",") {
				return errNotFast
			}
		}
	}
	*p = list
	return nil
}

// timeInto reads a time field as time.Time's UnmarshalJSON (null leaves it).
func (r *sessionReader) timeInto(p *time.Time) error {
	if r.lit("null") {
		return nil
	}
	raw, _, err := r.rawString()
	if err != nil {
		return err
	}
	if err := p.UnmarshalJSON(raw); err != nil {
		return errNotFast
	}
	return nil
}

// claimsMap reads a map[string]any field (null is nil).
func (r *sessionReader) claimsMap(p *map[string]any) error {
	if r.lit("null") {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = make(map[string]any)
	}
	m := *p
	return r.object(func(name string) error {
		v, err := r.value()
		m[name] = v
		return err
	})
}

// value reads any JSON value as encoding/json reads it into an any.
func (r *sessionReader) value() (any, error) {
	switch c := r.peek(); {
	case c == '"':
		return r.str()
	case c == '{':
		m := make(map[string]any)
		return m, r.object(func(name string) error {
			v, err := r.value()
			m[name] = v
			return err
		})
	case c == '[':
		r.i++
		list := make([]any, 0)
		if r.lit("]") {
			return list, nil
		}
		for {
			v, err := r.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			if r.lit("]") {
				return list, nil
			}
			if !r.lit(",") {
				return nil, errNotFast
			}
		}
	case c == '-' || (c >= '0' && c <= '9'):
		start := r.i
		for r.i < len(r.data) && isNumberByte(r.data[r.i]) {
			r.i++
		}
		f, err := strconv.ParseFloat(string(r.data[start:r.i]), 64)
		if err != nil {
			return nil, errNotFast
		}
		return f, nil
	case r.lit("true"):
		return true, nil
	case r.lit("false"):
		return false, nil
	case r.lit("null"):
		return nil, nil
	}
	return nil, errNotFast
}

// isNumberByte: the bytes of a JSON number (already checked valid).
func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

func (r *sessionReader) session(s *session) error {
	return r.object(func(name string) error {
		switch name {
		case "oidc":
			return r.defaultSession(&s.DefaultSession)
		case "client_id":
			return r.strInto(&s.ClientID)
		case "idp_sub":
			return r.strInto(&s.IDPSubject)
		case "dpop_jkt":
			return r.strInto(&s.DPoPJKT)
		case "cnf_jkt":
			return r.strInto(&s.AccessJKT)
		}
		return errNotFast
	})
}

func (r *sessionReader) defaultSession(p **openid.DefaultSession) error {
	return readStruct(r, p, func(d *openid.DefaultSession, name string) error {
		switch name {
		case "id_token_claims":
			return r.idTokenClaims(&d.Claims)
		case "headers":
			return r.headers(&d.Headers)
		case "expires_at":
			return r.expiries(&d.ExpiresAt)
		case "username":
			return r.strInto(&d.Username)
		case "subject":
			return r.strInto(&d.Subject)
		}
		return errNotFast
	})
}

// readStruct reads an object into *p as encoding/json does into a pointer
// to a struct: null is nil, an object fills *p (allocated if nil) through
// field, called with each member's name before its value.
func readStruct[T any](r *sessionReader, p **T, field func(t *T, name string) error) error {
	if r.lit("null") {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = new(T)
	}
	t := *p
	return r.object(func(name string) error { return field(t, name) })
}

func (r *sessionReader) headers(p **jwt.Headers) error {
	return readStruct(r, p, func(h *jwt.Headers, name string) error {
		if name != "extra" {
			return errNotFast
		}
		return r.claimsMap(&h.Extra)
	})
}

func (r *sessionReader) expiries(p *map[fosite.TokenType]time.Time) error {
	if r.lit("null") {
		*p = nil
		return nil
	}
	if *p == nil {
		*p = make(map[fosite.TokenType]time.Time)
	}
	m := *p
	return r.object(func(name string) error {
		var t time.Time
		err := r.timeInto(&t)
		m[fosite.TokenType(name)] = t
		return err
	})
}

func (r *sessionReader) idTokenClaims(p **jwt.IDTokenClaims) error {
	return readStruct(r, p, func(c *jwt.IDTokenClaims, name string) error {
		switch name {
		case "jti":
			return r.strInto(&c.JTI)
		case "iss":
			return r.strInto(&c.Issuer)
		case "sub":
			return r.strInto(&c.Subject)
		case "aud":
			return r.strs(&c.Audience)
		case "nonce":
			return r.strInto(&c.Nonce)
		case "exp":
			return r.timeInto(&c.ExpiresAt)
		case "iat":
			return r.timeInto(&c.IssuedAt)
		case "rat":
			return r.timeInto(&c.RequestedAt)
		case "auth_time":
			return r.timeInto(&c.AuthTime)
		case "at_hash":
			return r.strInto(&c.AccessTokenHash)
		case "acr":
			return r.strInto(&c.AuthenticationContextClassReference)
		case "amr":
			return r.strs(&c.AuthenticationMethodsReferences)
		case "c_hash":
			return r.strInto(&c.CodeHash)
		case "ext":
			return r.claimsMap(&c.Extra)
		}
		return errNotFast
	})
}
