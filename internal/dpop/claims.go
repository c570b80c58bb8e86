package dpop

import (
	"encoding/json"
	"strconv"
)

// decodeClaims decodes a proof's payload as encoding/json would into
// proofClaims. Proofs are small flat objects of plain strings and one
// number; those it reads itself (encoding/json's reflection is the largest
// cost of a proof after its signature), and anything else — escapes,
// non-ASCII, null, nested values, a name that differs from a claim's only by
// case — it leaves to encoding/json. FuzzDecodeClaims checks that both agree.
func decodeClaims(b []byte) (proofClaims, error) {
	if c, ok := scanClaims(string(b)); ok {
		return c, nil
	}
	var c proofClaims
	err := json.Unmarshal(b, &c)
	return c, err
}

// scanClaims reads the plain shape; ok is false when it cannot decide.
func scanClaims(s string) (c proofClaims, ok bool) {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return c, false
	}
	i = skipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return c, skipSpace(s, i+1) == len(s)
	}
	for {
		name, next, ok := plainString(s, i)
		if !ok {
			return c, false
		}
		i = skipSpace(s, next)
		if i >= len(s) || s[i] != ':' {
			return c, false
		}
		i = skipSpace(s, i+1)
		var str string
		var isString bool
		str, next, isString = plainString(s, i)
		if !isString {
			if next, ok = number(s, i); !ok {
				return c, false
			}
		}
		switch name {
		case "jti", "htm", "htu", "ath", "nonce":
			if !isString {
				return c, false
			}
			switch name {
			case "jti":
				c.JTI = str
			case "htm":
				c.HTM = str
			case "htu":
				c.HTU = str
			case "ath":
				c.ATH = &str
			default:
				c.Nonce = &str
			}
		case "iat":
			if isString {
				return c, false
			}
			f, err := strconv.ParseFloat(s[i:next], 64)
			if err != nil {
				return c, false
			}
			c.IAT = &f
		default:
			if foldsToClaim(name) {
				return c, false // encoding/json matches names without case
			}
		}
		i = skipSpace(s, next)
		if i >= len(s) {
			return c, false
		}
		switch s[i] {
		case ',':
			i = skipSpace(s, i+1)
		case '}':
			return c, skipSpace(s, i+1) == len(s)
		default:
			return c, false
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string of printable ASCII without escapes at
// s[i:], and returns it and the index after it.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", i, false
		}
	}
	return "", i, false
}

// number steps over a JSON number at s[i:] and returns the index after it.
func number(s string, i int) (int, bool) {
	digits := func() bool {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return i, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return i, false
		}
	}
	return i, true
}

// foldsToClaim reports whether name is a claim's name in other case.
func foldsToClaim(name string) bool {
	for _, claim := range []string{"jti", "htm", "htu", "iat", "ath", "nonce"} {
		if len(name) == len(claim) && equalFoldASCII(name, claim) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
