// Package redirecturi holds the broker's rules for redirect URIs: which
// may be registered, and when a requested one matches a registered one.
//
// A requested URI matches a registered one when the two are the same
// string, byte for byte: no decoding, no normalisation (RFC 6749 §3.1.2.3,
// RFC 9700 §4.1.3). The only exception is RFC 8252 §7.3's: for a native
// app (a public client) that registered an http URI on a loopback IP
// literal (127.0.0.1 or [::1]), any port matches, with scheme, host, path
// and query still the same bytes. "localhost" gets no port exception
// (RFC 8252 §8.3 advises against it: the name may resolve elsewhere, or be
// answered by another process on the other address family). A URI with
// userinfo (user@host) never matches and cannot be registered.
package redirecturi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Check reports why raw cannot be registered as a redirect URI (or
// post-logout redirect URI), or nil: it must be an absolute URL without
// a fragment or userinfo, http(s) with a host, http only on a loopback
// host, and never a scheme that runs or reads something in the browser
// itself (javascript:, data:, file:, …); a native app's private-use scheme
// (com.example.app:/cb, RFC 8252 §7.1) is fine.
func Check(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme == "" || !u.IsAbs():
		return errors.New("must be absolute")
	case browserScheme(u.Scheme):
		return fmt.Errorf("the scheme %s: is not allowed", u.Scheme)
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		return errors.New("must name a host")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return errors.New("must not have a fragment")
	case u.User != nil || strings.Contains(authority(raw), "@"):
		return errors.New("must not have userinfo (user@host)")
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		return errors.New("http is allowed only for loopback hosts; use https")
	}
	return nil
}

// Match reports whether requested matches one of registered: the same
// bytes or, when native is set (a public client), the same bytes but for
// the port of an http loopback IP URI (RFC 8252 §7.3).
func Match(registered []string, requested string, native bool) bool {
	if requested == "" || strings.Contains(authority(requested), "@") {
		return false
	}
	if u, err := url.Parse(requested); err != nil || browserScheme(u.Scheme) {
		return false // a client registered before Check refused these
	}
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	if !native {
		return false
	}
	host, rest, ok := loopbackParts(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		if h, rr, ok := loopbackParts(r); ok && h == host && rr == rest {
			return true
		}
	}
	return false
}

// loopbackParts splits an http URI on a loopback IP literal into its host
// (without the port) and what follows the authority (path, query), or
// reports false for any other URI.
func loopbackParts(raw string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(raw, "http://")
	if !found {
		return "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	hostport, rest := after[:end], after[end:]
	for _, h := range []string{"127.0.0.1", "[::1]"} {
		port, found := strings.CutPrefix(hostport, h)
		if !found {
			continue
		}
		if port == "" {
			return h, rest, true
		}
		if digits, found := strings.CutPrefix(port, ":"); found && validPort(digits) {
			return h, rest, true
		}
	}
	return "", "", false
}

// validPort accepts a port number 1–65535 written without leading zeros
// (one way to write each port: "0001" is not "1").
func validPort(s string) bool {
	if s == "" || len(s) > 5 || s[0] == '0' {
		return false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n <= 65535
}

// authority returns the authority part of a URI ("" without one).
func authority(raw string) string {
	i := strings.Index(raw, "://")
	if i < 0 {
		return ""
	}
	rest := raw[i+3:]
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// loopbackHost reports whether h (without port or brackets) names the
// local machine: localhost or a loopback IP literal (127.0.0.0/8, ::1).
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// browserScheme reports whether a URI of this scheme (url.Parse gives it
// lower-cased) would be run or read by the browser itself instead of
// reaching an application: a redirect there hands the code to page script
// or to nothing at all.
func browserScheme(scheme string) bool {
	switch scheme {
	case "javascript", "vbscript", "data", "file", "blob", "about", "filesystem", "view-source", "chrome", "resource":
		return true
	}
	return false
}
