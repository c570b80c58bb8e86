package oidc

import (
	"sort"
	"strings"
)

// params is an ordered list of form or query parameters. net/url is not used
// because it pulls fmt into the WebAssembly build.
type params [][2]string

func (p *params) add(key, value string) { *p = append(*p, [2]string{key, value}) }

// addIf adds the parameter when value is not empty.
func (p *params) addIf(key, value string) {
	if value != "" {
		p.add(key, value)
	}
}

// encode writes the parameters in application/x-www-form-urlencoded form.
func (p params) encode() string {
	var b strings.Builder
	for i, kv := range p {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escape(kv[0]))
		b.WriteByte('=')
		b.WriteString(escape(kv[1]))
	}
	return b.String()
}

// sortedParams returns the entries of m as params sorted by key.
func sortedParams(m map[string]string) params {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p := make(params, 0, len(keys))
	for _, k := range keys {
		p.add(k, m[k])
	}
	return p
}

// escape percent-encodes s for a query component: only unreserved characters
// stay as they are, spaces become %20.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// unescape decodes percent-encoding and '+' as space. It reports false for a
// malformed escape.
func unescape(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseQuery decodes a query string into its first value per key.
func parseQuery(q string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(q, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, ok1 := unescape(k)
		v, ok2 := unescape(v)
		if !ok1 || !ok2 {
			continue
		}
		if _, seen := out[k]; !seen {
			out[k] = v
		}
	}
	return out
}

// callbackParams returns the parameters of a redirect URL: its query, or its
// fragment when the query holds neither code nor error.
func callbackParams(rawURL string) map[string]string {
	rest, fragment, _ := strings.Cut(rawURL, "#")
	_, query, _ := strings.Cut(rest, "?")
	p := parseQuery(query)
	if p["code"] == "" && p["error"] == "" && fragment != "" {
		return parseQuery(fragment)
	}
	return p
}

// withQuery appends encoded parameters to a URL that may already have a query.
func withQuery(base string, p params) string {
	if len(p) == 0 {
		return base
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + p.encode()
}
