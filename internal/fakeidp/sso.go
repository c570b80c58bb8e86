package fakeidp

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ssoCookie carries the fake IdP's own sign-in session, as Okta's, Google's
// and Dex's do: a browser that signed in once is signed in again silently.
const ssoCookie = "fakeidp_sso"

// ssoLifetime bounds the fake IdP's session.
const ssoLifetime = 8 * time.Hour

// ssoSession is a browser signed in at the fake IdP.
type ssoSession struct {
	subject  string
	authTime time.Time // when the user entered a credential
	expires  time.Time
}

// freshRequest is what a client asked about the age of the sign-in.
type freshRequest struct {
	force     bool // prompt=login (or Facebook's auth_type=reauthenticate)
	hasMaxAge bool
	maxAge    time.Duration
}

// freshness reads prompt and max_age (Okta, Google) or auth_type
// (Facebook); bad describes a malformed value.
func freshness(f flavour, q url.Values) (freshRequest, string) {
	var fr freshRequest
	if f == flavourFacebook {
		fr.force = q.Get("auth_type") == "reauthenticate"
		return fr, ""
	}
	prompt := strings.Fields(q.Get("prompt"))
	fr.force = slices.Contains(prompt, "login")
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return fr, "max_age must be a non-negative integer"
		}
		fr.hasMaxAge, fr.maxAge = true, time.Duration(n)*time.Second
	}
	return fr, ""
}

// allows reports whether a sign-in at authTime satisfies the request.
func (fr freshRequest) allows(authTime, now time.Time) bool {
	if fr.force {
		return false
	}
	return !fr.hasMaxAge || !now.After(authTime.Add(fr.maxAge))
}

// startSSO signs the browser in at the fake IdP.
func (s *Server) startSSO(w http.ResponseWriter, subject string, authTime time.Time) {
	value := randomToken(24)
	s.mu.Lock()
	now := s.now()
	for k, v := range s.sso {
		if now.After(v.expires) {
			delete(s.sso, k)
		}
	}
	s.sso[ssoKey(value)] = &ssoSession{subject: subject, authTime: authTime, expires: now.Add(ssoLifetime)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(ssoLifetime / time.Second)})
}

// ssoUser returns the user the browser is signed in as at the fake IdP and
// when they entered a credential; nil when not signed in or disabled since.
func (s *Server) ssoUser(r *http.Request) (*User, time.Time) {
	c, err := r.Cookie(ssoCookie)
	if err != nil || c.Value == "" {
		return nil, time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sso[ssoKey(c.Value)]
	if sess == nil || s.now().After(sess.expires) {
		return nil, time.Time{}
	}
	u := s.users[sess.subject]
	if u == nil || u.Disabled {
		return nil, time.Time{}
	}
	cp := *u
	return &cp, sess.authTime
}

// EndSessions signs every browser out of the fake IdP.
func (s *Server) EndSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sso)
}

func ssoKey(value string) string {
	h := sha256.Sum256([]byte(value))
	return hex.EncodeToString(h[:])
}
