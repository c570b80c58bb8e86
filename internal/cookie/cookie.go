// Package cookie names and scopes the cookies the broker sets (its
// session, the login binding, the federation login, the account pages'
// form token), so that they all follow one rule.
//
// On an https issuer every cookie gets the __Host- prefix: browsers then
// accept it only when it is Secure, has Path=/ and no Domain, so no other
// host (a subdomain, a sibling site under the same registrable domain)
// can set, overwrite or read it (RFC 6265bis §4.1.3.2). On an http issuer
// (development on loopback) the names are plain and each cookie keeps the
// path it asks for.
package cookie

import (
	"net/http"
	"net/url"
)

// Policy is the cookie rule of one issuer.
type Policy struct {
	secure bool
}

// For returns the policy of an issuer URL ("https://…" or "http://…").
func For(issuer string) Policy {
	u, err := url.Parse(issuer)
	return Policy{secure: err == nil && u.Scheme == "https"}
}

// Secure reports whether the issuer is https: cookies are Secure and
// __Host- prefixed.
func (p Policy) Secure() bool { return p.secure }

// Name is the name a cookie called name is sent under.
func (p Policy) Name(name string) string {
	if p.secure {
		return "__Host-" + name
	}
	return name
}

// Set sets c, named by c.Name without the prefix: HttpOnly, SameSite=Lax,
// and on https Secure, __Host- prefixed, Path=/ and no Domain; on http
// its own Path ("/" when empty).
func (p Policy) Set(w http.ResponseWriter, c *http.Cookie) {
	c.Name = p.Name(c.Name)
	c.Domain = ""
	c.HttpOnly = true
	c.SameSite = http.SameSiteLaxMode
	c.Secure = p.secure
	if p.secure || c.Path == "" {
		c.Path = "/"
	}
	http.SetCookie(w, c)
}

// Clear removes the cookie name (set with path).
func (p Policy) Clear(w http.ResponseWriter, name, path string) {
	p.Set(w, &http.Cookie{Name: name, Path: path, MaxAge: -1})
}

// Get returns the request's cookie name (without the prefix).
func (p Policy) Get(r *http.Request, name string) (*http.Cookie, error) {
	return r.Cookie(p.Name(name))
}
