package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Cookie names. The session cookie identifies the broker login session; the
// binding cookie ties pending logins to the browser that started them.
const (
	sessionCookie = "bk_session"
	bindingCookie = "bk_login"
)

// randomToken returns 32 random bytes, base64url: a cookie value, login id…
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is the SHA-256 (hex) under which a random value is stored.
func hashToken(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// setCookie sets one of the broker's cookies under the issuer's path (on
// an https issuer: __Host- prefixed, Path=/; see package cookie).
func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	s.cookies.Set(w, &http.Cookie{Name: name, Value: value, Path: s.cookiePath(), MaxAge: int(maxAge / time.Second)})
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	s.cookies.Clear(w, name, s.cookiePath())
}

func (s *Server) cookiePath() string {
	if s.basePath == "" {
		return "/"
	}
	return s.basePath
}

// browserBinding returns the hash of the browser's binding cookie, setting
// a new cookie when there is none.
func (s *Server) browserBinding(w http.ResponseWriter, r *http.Request) string {
	v := randomToken()
	if c, err := s.cookies.Get(r, bindingCookie); err == nil && len(c.Value) >= 32 {
		v = c.Value // keep it, with a fresh expiry
	}
	s.setCookie(w, bindingCookie, v, s.cfg.PendingLoginLifetime)
	return hashToken(v)
}

// currentBinding returns the hash of the binding cookie ("" without one).
func (s *Server) currentBinding(r *http.Request) string {
	if c, err := s.cookies.Get(r, bindingCookie); err == nil && len(c.Value) >= 32 {
		return hashToken(c.Value)
	}
	return ""
}

// browserSession returns the valid broker session of the request's cookie
// and its user, or storage.ErrNotFound. A session whose user is gone,
// inactive or disabled is deleted and reported as not found.
func (s *Server) browserSession(r *http.Request) (*storage.BrowserSession, *storage.User, error) {
	c, err := s.cookies.Get(r, sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, storage.ErrNotFound
	}
	ctx := r.Context()
	bs, err := s.sessions.GetBrowserSession(ctx, hashToken(c.Value))
	if err != nil {
		return nil, nil, err
	}
	u, err := s.sessions.GetUser(ctx, bs.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (!u.Active || u.Disabled)) {
		if err := s.sessions.DeleteBrowserSession(ctx, bs.ID); err != nil {
			s.log.WarnContext(ctx, "delete browser session", "err", err)
		}
		return nil, nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	return bs, u, nil
}

// CurrentUser returns the user logged in to the broker in this browser, or
// an error wrapping storage.ErrNotFound when there is none.
func (s *Server) CurrentUser(r *http.Request) (*storage.User, error) {
	_, u, err := s.browserSession(r)
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	return u, nil
}

// loginSession is a broker session a login starts. Its row is written with
// the grant (finishAuthorize), replacing the session the browser had; its
// cookie is set once that succeeded.
type loginSession struct {
	row    *storage.BrowserSession
	cookie string // the cookie's value; row.ID is its hash
	oldID  string // the browser's previous session, deleted with the write ("" for none)

	// take, when set, uses the pending login up first; gone records that
	// it failed because another request had (storage.ErrNotFound).
	take func(ctx context.Context) error
	gone bool
	// also are the caller's writes for this login (CompleteLoginAs).
	also []func(ctx context.Context) error
}

// prepareSession prepares a broker session for the user; nothing is written.
func (s *Server) prepareSession(r *http.Request, userID, idp string, amr []string, now time.Time) *loginSession {
	if amr == nil {
		amr = []string{}
	}
	value := randomToken()
	ns := &loginSession{
		row: &storage.BrowserSession{
			ID:        hashToken(value),
			UserID:    userID,
			AuthTime:  now,
			IDP:       idp,
			AMR:       amr,
			CreatedAt: now,
			ExpiresAt: now.Add(s.cfg.SessionLifetime),
		},
		cookie: value,
	}
	if c, err := s.cookies.Get(r, sessionCookie); err == nil && c.Value != "" {
		ns.oldID = hashToken(c.Value)
	}
	return ns
}

// write uses the pending login up (when ns.take is set), deletes the
// browser's previous session, creates the new one and makes the caller's
// writes (ns.also).
func (ns *loginSession) write(ctx context.Context, store browserSessions) error {
	if ns.take != nil {
		if err := ns.take(ctx); err != nil {
			ns.gone = errors.Is(err, storage.ErrNotFound)
			return fmt.Errorf("take pending login: %w", err)
		}
	}
	if ns.oldID != "" {
		if err := store.DeleteBrowserSession(ctx, ns.oldID); err != nil {
			return fmt.Errorf("delete old browser session: %w", err)
		}
	}
	if err := store.CreateBrowserSession(ctx, ns.row); err != nil {
		return fmt.Errorf("create browser session: %w", err)
	}
	for _, op := range ns.also {
		if err := op(ctx); err != nil {
			return err
		}
	}
	return nil
}

// endSession deletes the browser's broker session and its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cookies.Get(r, sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	s.clearCookie(w, sessionCookie)
	if err := s.sessions.DeleteBrowserSession(r.Context(), hashToken(c.Value)); err != nil {
		return fmt.Errorf("delete browser session: %w", err)
	}
	return nil
}
