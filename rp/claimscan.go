package rp

import (
	"encoding/json"
	"errors"
	"strings"
)

// scanPayload reads the registered claims from a token payload. It is a
// small single-pass reader for the one shape a payload has — an object
// whose interesting members are strings, numbers and string arrays — and
// skips every other member. It exists because encoding/json's reflection
// cost is a sizeable share of verifying a token; FuzzScanPayload checks that
// it agrees with encoding/json. Like encoding/json, a repeated member keeps
// its last value.
func scanPayload(b []byte) (payload, error) {
	// One copy of the payload as a string; every claim is a substring of it.
	s := scanner{b: string(b)}
	var p payload
	s.space()
	if !s.consume('{') {
		return p, errNotObject
	}
	s.space()
	if s.consume('}') {
		return p, s.end()
	}
	for {
		s.space()
		name, err := s.string()
		if err != nil {
			return p, err
		}
		s.space()
		if !s.consume(':') {
			return p, errSyntax
		}
		s.space()
		if err := s.member(&p, name); err != nil {
			return p, err
		}
		s.space()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return p, s.end()
		}
		return p, errSyntax
	}
}

var (
	errNotObject = errors.New("payload is not a JSON object")
	errSyntax    = errors.New("payload is not valid JSON")
)

type scanner struct {
	b string
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() error {
	s.space()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// member decodes the value of the member called name into p, or skips it.
func (s *scanner) member(p *payload, name string) error {
	var err error
	switch name {
	case "iss":
		err = s.stringInto(&p.Issuer)
	case "sub":
		err = s.stringInto(&p.Subject)
	case "jti":
		err = s.stringInto(&p.ID)
	case "client_id":
		err = s.stringInto(&p.ClientID)
	case "scope":
		err = s.stringInto(&p.Scope)
	case "aud":
		if s.i < len(s.b) && s.b[s.i] == '"' {
			var one string
			one, err = s.string()
			p.Audience = audience{one}
		} else {
			p.Audience, err = s.strings()
		}
	case "scp":
		p.Scp, err = s.strings()
	case "cnf":
		err = s.confirmation(p)
	case "exp", "iat", "nbf":
		start := s.i
		if err = s.skip(0); err != nil {
			return err
		}
		d, err := parseNumericDate(s.b[start:s.i])
		if err != nil {
			return err
		}
		switch name {
		case "exp":
			p.ExpiresAt = d
		case "iat":
			p.IssuedAt = d
		default:
			p.NotBefore = d
		}
	default:
		err = s.skip(0)
	}
	return err
}

// confirmation reads the cnf object (RFC 7800) for its jkt member and
// skips the others. As with encoding/json, a later cnf replaces an earlier
// one, and null is no confirmation.
func (s *scanner) confirmation(p *payload) error {
	p.JKT = ""
	if s.literal("null") {
		return nil
	}
	if !s.consume('{') {
		return errSyntax
	}
	s.space()
	if s.consume('}') {
		return nil
	}
	for {
		s.space()
		name, err := s.string()
		if err != nil {
			return err
		}
		s.space()
		if !s.consume(':') {
			return errSyntax
		}
		s.space()
		if name == "jkt" {
			err = s.stringInto(&p.JKT)
		} else {
			err = s.skip(1)
		}
		if err != nil {
			return err
		}
		s.space()
		if s.consume(',') {
			continue
		}
		if s.consume('}') {
			return nil
		}
		return errSyntax
	}
}

// stringInto reads a JSON string into dst; null leaves dst as it is.
func (s *scanner) stringInto(dst *string) error {
	if s.literal("null") {
		return nil
	}
	v, err := s.string()
	if err == nil {
		*dst = v
	}
	return err
}

// string reads a JSON string; escapes are left to encoding/json.
func (s *scanner) string() (string, error) {
	if !s.consume('"') {
		return "", errSyntax
	}
	start := s.i
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !escaped {
				return s.b[start : s.i-1], nil
			}
			var out string
			if err := json.Unmarshal([]byte(s.b[start-1:s.i]), &out); err != nil {
				return "", errSyntax
			}
			return out, nil
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			return "", errSyntax
		case c >= 0x80:
			escaped = true // let encoding/json check and repair the UTF-8
			s.i++
		default:
			s.i++
		}
	}
	return "", errSyntax
}

// strings reads an array of strings; null reads as nil.
func (s *scanner) strings() ([]string, error) {
	if s.literal("null") {
		return nil, nil
	}
	if !s.consume('[') {
		return nil, errSyntax
	}
	out := []string{}
	s.space()
	if s.consume(']') {
		return out, nil
	}
	for {
		s.space()
		v, err := s.string()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		s.space()
		if s.consume(',') {
			continue
		}
		if s.consume(']') {
			return out, nil
		}
		return nil, errSyntax
	}
}

func (s *scanner) literal(word string) bool {
	if strings.HasPrefix(s.b[s.i:], word) {
		s.i += len(word)
		return true
	}
	return false
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 64

// skip steps over one JSON value, checking its syntax.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return errSyntax
	}
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.string()
		return err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.i++
		s.space()
		if s.consume(closer) {
			return nil
		}
		for {
			s.space()
			if c == '{' {
				if _, err := s.string(); err != nil {
					return err
				}
				s.space()
				if !s.consume(':') {
					return errSyntax
				}
				s.space()
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			s.space()
			if s.consume(',') {
				continue
			}
			if s.consume(closer) {
				return nil
			}
			return errSyntax
		}
	case c == 't':
		return s.word("true")
	case c == 'f':
		return s.word("false")
	case c == 'n':
		return s.word("null")
	default:
		return s.number()
	}
}

func (s *scanner) word(w string) error {
	if !s.literal(w) {
		return errSyntax
	}
	return nil
}

// number steps over a JSON number, checking its grammar.
func (s *scanner) number() error {
	s.consume('-')
	switch {
	case s.consume('0'):
	case s.digits() == 0:
		return errSyntax
	}
	if s.consume('.') && s.digits() == 0 {
		return errSyntax
	}
	if s.consume('e') || s.consume('E') {
		if !s.consume('+') {
			s.consume('-')
		}
		if s.digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}
