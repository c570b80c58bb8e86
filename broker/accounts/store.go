package accounts

import (
	"context"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Store is what the account pages use of storage (*storage.Store fits):
// users, their one-time links, and ending their sessions and tokens when
// their security changes.
type Store interface {
	LimiterStore
	CreateUser(ctx context.Context, u *storage.User) error
	GetUser(ctx context.Context, id string) (*storage.User, error)
	ChangeUserSecurity(ctx context.Context, userID string, change func(u *storage.User) error) (*storage.User, error)

	CreateActionToken(ctx context.Context, t *storage.ActionToken) error
	GetActionToken(ctx context.Context, id, kind string, now time.Time) (*storage.ActionToken, error)
	RedeemActionToken(ctx context.Context, id, kind string, now time.Time,
		apply func(t *storage.ActionToken, u *storage.User) (securityChange bool, err error)) (*storage.ActionToken, *storage.User, error)

	DeleteUserBrowserSessions(ctx context.Context, userID string) error
	RevokeSubjectTokens(ctx context.Context, subject string) error
}

// LimiterStore is what a Limiter uses of storage (*storage.Store fits): its
// counters, and the user of an address.
type LimiterStore interface {
	HitRateCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int, time.Time, error)
	HitBackoffCounter(ctx context.Context, key string, now time.Time, forget time.Duration,
		wait func(count int) time.Duration) (count int, retryAfter time.Duration, err error)
	ResetRateCounter(ctx context.Context, key string) error
	GetUserByEmail(ctx context.Context, email string) (*storage.User, error)
}
