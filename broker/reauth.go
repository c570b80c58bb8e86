package broker

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// ErrTooManyAttempts is returned by CheckPassword when the login limits
// refuse the attempt; the duration returned with it says when to retry
// (0: unknown).
var ErrTooManyAttempts = errors.New("too many sign-in attempts")

// CheckPassword verifies pw as the password of the user u, for a page that
// asks the owner of an account to prove control of it (linking an upstream
// identity to it). It applies what the login form applies: the login
// limits (per account and client IP), the cap on concurrent argon2id
// verifications, telling the limiter of a success and re-hashing an old
// hash. A user without a password never passes. The error is
// ErrTooManyAttempts (with the time to wait), a cancelled request or a
// malformed stored hash.
func (s *Server) CheckPassword(r *http.Request, u *storage.User, pw string) (bool, time.Duration, error) {
	ctx := r.Context()
	account := strings.ToLower(u.Email)
	lim := s.cfg.LoginLimiter
	if lim != nil && account != "" {
		ok, retry, err := lim.Allow(ctx, "login", account, clientIP(r))
		if err != nil {
			s.log.ErrorContext(ctx, "login limiter", "err", err)
		} else if !ok {
			return false, retry, ErrTooManyAttempts
		}
	}
	ok, err := s.verifyPassword(ctx, u, pw)
	if err != nil || !ok {
		return false, 0, err
	}
	if lim != nil && account != "" {
		s.loginSucceeded(ctx, lim, account, clientIP(r))
	}
	s.rehashPassword(ctx, u, pw)
	return true, 0, nil
}
