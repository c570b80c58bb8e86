package broker

import (
	"context"
	"fmt"
	"runtime"

	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// argonSlots caps concurrent argon2id computations (19 MiB each), so a
// flood of login attempts queues instead of exhausting memory.
type argonSlots chan struct{}

func newArgonSlots() argonSlots { return make(argonSlots, 2*runtime.GOMAXPROCS(0)) }

// acquire waits for a free slot or for ctx to end.
func (a argonSlots) acquire(ctx context.Context) error {
	select {
	case a <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting to verify a password: %w", context.Cause(ctx))
	}
}

func (a argonSlots) release() { <-a }

// verifyPassword checks pw against the user's hash (or spends the same
// time on a dummy verification when u is nil or has no password), within
// the argon2 concurrency cap. The error is a cancelled wait or a malformed
// stored hash.
func (s *Server) verifyPassword(ctx context.Context, u *storage.User, pw string) (bool, error) {
	if err := s.argon.acquire(ctx); err != nil {
		return false, err
	}
	defer s.argon.release()
	if u == nil || u.PasswordHash == "" {
		password.DummyVerify(pw)
		return false, nil
	}
	return password.Verify(u.PasswordHash, pw)
}

// rehashPassword replaces a hash made with old argon2id parameters after
// the password was verified. Failures are logged: the login goes on.
func (s *Server) rehashPassword(ctx context.Context, u *storage.User, pw string) {
	if !password.NeedsRehash(u.PasswordHash) {
		return
	}
	if err := s.argon.acquire(ctx); err != nil {
		return
	}
	h, err := password.Hash(pw)
	s.argon.release()
	if err == nil {
		err = s.sessions.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, h)
	}
	if err != nil {
		s.log.WarnContext(ctx, "login: re-hash password", "user", u.ID, "err", err)
		return
	}
	u.PasswordHash = h
}

// loginSucceeded tells the limiter, when it can be told, that the account
// logged in from ip, so earlier failures there do not slow it down.
func (s *Server) loginSucceeded(ctx context.Context, lim LoginLimiter, email, ip string) {
	hook, ok := lim.(interface {
		Succeeded(ctx context.Context, action, account, ip string) error
	})
	if !ok {
		return
	}
	if err := hook.Succeeded(ctx, "login", email, ip); err != nil {
		s.log.WarnContext(ctx, "login limiter: success hook", "err", err)
	}
}
