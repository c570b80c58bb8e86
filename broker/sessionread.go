package broker

import (
	"encoding/json"
	"errors"
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
// reflection cost about 4 % of a refresh. sessionReader reads a session as
// the broker stores it (the field names exactly, values of the fields'
// kinds) with encoding/json's rules for decoding into a value that holds
// something already: a member present replaces a string, slice, time or
// nil pointer, null clears a slice, map or pointer, an object merges into
// a map or the struct a pointer holds. Anything else — other names, which
// encoding/json matches ignoring case, other kinds — is left to
// encoding/json, which applies the whole JSON again: applying a prefix of
// it first changes nothing, as every member either replaces or merges
// (TestSessionReadAsReflection, FuzzSessionRead).
func (s *session) UnmarshalJSON(data []byte) error {
	r := sessionReader{data: data}
	if err := r.session(s); err == nil && r.end() {
		return nil
	}
	return json.Unmarshal(data, (*sessionFields)(s))
}

// sessionFields is session without its methods, for encoding/json.
type sessionFields session

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

// member reads the next member name of an object whose "{" was read
// (i: the members read before): ok is false after the closing "}".
func (r *sessionReader) member(i int) (name []byte, ok bool, err error) {
	if r.lit("}") {
		return nil, false, nil
	}
	if i > 0 && !r.lit(",") {
		return nil, false, errNotFast
	}
	if name, err = r.strBytes(); err != nil || !r.lit(":") {
		return nil, false, errNotFast
	}
	return name, true, nil
}

// eachMember reads the members of an object whose "{" was read, handing
// each one's name to read, which reads its value.
func (r *sessionReader) eachMember(read func(name []byte) error) error {
	for i := 0; ; i++ {
		name, ok, err := r.member(i)
		if err != nil || !ok {
			return err
		}
		if err := read(name); err != nil {
			return err
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
	b, err := r.strBytes()
	return string(b), err
}

// strBytes reads a string: without escapes, the bytes between the quotes
// (no copy); otherwise decoded by encoding/json.
func (r *sessionReader) strBytes() ([]byte, error) {
	raw, plain, err := r.rawString()
	if err != nil {
		return nil, err
	}
	if plain {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil { // escapes, UTF-8 repair
		return nil, errNotFast
	}
	return []byte(s), nil
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

// claimsMap reads a map[string]any field: null is nil, an object's
// members are added to the map.
func (r *sessionReader) claimsMap(p *map[string]any) error {
	if r.lit("null") {
		*p = nil
		return nil
	}
	if !r.lit("{") {
		return errNotFast
	}
	if *p == nil {
		*p = make(map[string]any)
	}
	return r.members(*p)
}

// members reads the members of an object whose "{" was read into m.
func (r *sessionReader) members(m map[string]any) error {
	return r.eachMember(func(name []byte) (err error) {
		m[string(name)], err = r.value()
		return err
	})
}

// value reads any JSON value as encoding/json reads it into an any.
func (r *sessionReader) value() (any, error) {
	switch c := r.peek(); {
	case c == '"':
		return r.str()
	case c == '{':
		r.i++
		m := make(map[string]any)
		return m, r.members(m)
	case c == '[':
		r.i++
		list := make([]any, 0)
		for i := 0; !r.lit("]"); i++ {
			if i > 0 && !r.lit(",") {
				return nil, errNotFast
			}
			v, err := r.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
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
	if !r.lit("{") {
		return errNotFast
	}
	return r.eachMember(func(name []byte) error {
		switch string(name) {
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

// open starts reading an object into *p as encoding/json does into a
// pointer to a struct: null makes *p nil (done is true), an object is read
// into *p, allocated if nil.
func open[T any](r *sessionReader, p **T) (t *T, done bool, err error) {
	if r.lit("null") {
		*p = nil
		return nil, true, nil
	}
	if !r.lit("{") {
		return nil, true, errNotFast
	}
	if *p == nil {
		*p = new(T)
	}
	return *p, false, nil
}

func (r *sessionReader) defaultSession(p **openid.DefaultSession) error {
	d, done, err := open(r, p)
	if done {
		return err
	}
	return r.eachMember(func(name []byte) error {
		switch string(name) {
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

func (r *sessionReader) headers(p **jwt.Headers) error {
	h, done, err := open(r, p)
	if done {
		return err
	}
	return r.eachMember(func(name []byte) error {
		if string(name) != "extra" {
			return errNotFast
		}
		return r.claimsMap(&h.Extra)
	})
}

// expiries reads the expiry times by token type: null is nil, an object's
// members are added to the map.
func (r *sessionReader) expiries(p *map[fosite.TokenType]time.Time) error {
	if r.lit("null") {
		*p = nil
		return nil
	}
	if !r.lit("{") {
		return errNotFast
	}
	if *p == nil {
		*p = make(map[fosite.TokenType]time.Time)
	}
	return r.eachMember(func(name []byte) error {
		var t time.Time
		if err := r.timeInto(&t); err != nil {
			return err
		}
		(*p)[fosite.TokenType(name)] = t
		return nil
	})
}

func (r *sessionReader) idTokenClaims(p **jwt.IDTokenClaims) error {
	c, done, err := open(r, p)
	if done {
		return err
	}
	return r.eachMember(func(name []byte) error {
		switch string(name) {
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
