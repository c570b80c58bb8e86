package storage

import (
	"context"
	"fmt"
	"time"
)

// CreateActionToken stores a single-use e-mail token (CreatedAt defaults to
// now).
func (s *Store) CreateActionToken(ctx context.Context, t *ActionToken) error {
	if t.ID == "" || t.Kind == "" {
		return fmt.Errorf("storage: create action token: id and kind are required")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(t).Exec(ctx); err != nil {
		return s.wrap("create action token", err)
	}
	return nil
}

// UseActionToken marks an unused, unexpired token of the given kind as used
// at now and returns it, in one statement: of concurrent callers exactly one
// succeeds. Any other token — unknown, of another kind, used or expired —
// is ErrNotFound.
func (s *Store) UseActionToken(ctx context.Context, id, kind string, now time.Time) (*ActionToken, error) {
	now = now.UTC()
	var used []ActionToken
	db, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	err = db.NewUpdate().Model(&used).
		Set("used_at = ?", now).
		Where("id = ?", id).
		Where("kind = ?", kind).
		Where("used_at IS NULL").
		Where("expires_at > ?", now).
		Returning("*").
		Scan(ctx)
	if err != nil && classify(err) != ErrNotFound {
		return nil, s.wrap("use action token", err)
	}
	if len(used) == 0 {
		return nil, notFound(kind+" token", "…")
	}
	return &used[0], nil
}

// HitRateCounter counts one event under key in a fixed window of the given
// length and returns the count so far in the current window and when that
// window started. A window starts at the first hit after the previous one
// ended. The increment is one atomic statement, so replicas sharing the
// database count together.
func (s *Store) HitRateCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int, time.Time, error) {
	if window <= 0 {
		return 0, time.Time{}, fmt.Errorf("storage: rate counter %q: window must be positive", key)
	}
	now = now.UTC()
	c := &RateCounter{Key: key, Count: 1, WindowStart: now, ExpiresAt: now.Add(window)}
	db, err := s.writer(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	err = db.NewInsert().Model(c).
		On(`CONFLICT ("key") DO UPDATE`).
		Set(`"count" = CASE WHEN rate_counter.expires_at <= EXCLUDED.window_start THEN 1 ELSE rate_counter."count" + 1 END`).
		Set("window_start = CASE WHEN rate_counter.expires_at <= EXCLUDED.window_start THEN EXCLUDED.window_start ELSE rate_counter.window_start END").
		Set("expires_at = CASE WHEN rate_counter.expires_at <= EXCLUDED.window_start THEN EXCLUDED.expires_at ELSE rate_counter.expires_at END").
		Returning(`"count", window_start`).
		Scan(ctx, &c.Count, &c.WindowStart)
	if err != nil {
		return 0, time.Time{}, s.wrap(fmt.Sprintf("hit rate counter %q", key), err)
	}
	return c.Count, c.WindowStart.UTC(), nil
}

// ResetRateCounter forgets the counter under key.
func (s *Store) ResetRateCounter(ctx context.Context, key string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*RateCounter)(nil)).Where(`"key" = ?`, key).Exec(ctx); err != nil {
		return s.wrap(fmt.Sprintf("reset rate counter %q", key), err)
	}
	return nil
}
