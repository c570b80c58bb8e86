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

// GetActionToken loads an unused, unexpired token of the given kind without
// using it. Any other token is ErrNotFound.
func (s *Store) GetActionToken(ctx context.Context, id, kind string, now time.Time) (*ActionToken, error) {
	if unstorable(id, kind) {
		return nil, notFound(kind+" token", "…")
	}
	t := new(ActionToken)
	err := s.reader(ctx).NewSelect().Model(t).
		Where("id = ?", id).
		Where("kind = ?", kind).
		Where("used_at IS NULL").
		Where("expires_at > ?", now.UTC()).
		Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound(kind+" token", "…")
		}
		return nil, s.wrap("load action token", err)
	}
	return t, nil
}

// RedeemActionToken uses a token of the given kind and applies it to its
// user, in one transaction: apply sees the used token and the user's
// current row and changes the user; what a security change may change is
// written back (writeUserSecurity) when apply returns nil. When apply reports a security change (a new password or
// e-mail address), every other outstanding token of the user ends in the
// same transaction, as with ChangeUserSecurity. When apply fails, nothing
// is written and the token stays unused; its error is returned as is.
//
// A token that is unknown, of another kind, used, expired or ended by a
// security change — also one that ends while this call waits for the
// user's row — is ErrNotFound.
func (s *Store) RedeemActionToken(ctx context.Context, id, kind string, now time.Time,
	apply func(t *ActionToken, u *User) (securityChange bool, err error)) (*ActionToken, *User, error) {
	t, err := s.GetActionToken(ctx, id, kind, now)
	if err != nil {
		return nil, nil, err
	}
	var u *User
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.lockUser(ctx, t.UserID); err != nil {
			return err
		}
		// Under the user's lock: a security change that committed
		// meanwhile has ended the token, and one that comes later waits.
		if t, err = s.UseActionToken(ctx, id, kind, now); err != nil {
			return err
		}
		if u, err = s.GetUser(ctx, t.UserID); err != nil {
			return err
		}
		security, err := apply(t, u)
		if err != nil {
			return err
		}
		if err := s.writeUserSecurity(ctx, u); err != nil {
			return err
		}
		if security {
			return s.endActionTokens(ctx, u.ID)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// endActionTokens deletes every unused token of a user (the links in
// e-mails sent before a security change).
func (s *Store) endActionTokens(ctx context.Context, userID string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*ActionToken)(nil)).Where("user_id = ?", userID).Where("used_at IS NULL").Exec(ctx); err != nil {
		return s.wrap(fmt.Sprintf("end action tokens of user %q", userID), err)
	}
	return nil
}

// HitBackoffCounter counts one attempt under key for a growing delay
// between attempts (rate_counters row: count is the attempts so far,
// window_start the last one; the row is forgotten forget after it). With
// wait nil the attempt is always counted. Otherwise it is counted only
// when wait(count) has passed since the last attempt; if not, nothing is
// counted and retryAfter says how long is left. count is the number of
// attempts after this one (or so far, when refused). The check and the
// count are one compare-and-set, so that of concurrent attempts on every
// replica only one takes a free slot.
func (s *Store) HitBackoffCounter(ctx context.Context, key string, now time.Time, forget time.Duration,
	wait func(count int) time.Duration) (count int, retryAfter time.Duration, err error) {
	if forget <= 0 {
		return 0, 0, fmt.Errorf("storage: backoff counter %q: forget must be positive", key)
	}
	now = now.UTC()
	db, err := s.writer(ctx)
	if err != nil {
		return 0, 0, err
	}
	if wait == nil {
		c := &RateCounter{Key: key, Count: 1, WindowStart: now, ExpiresAt: now.Add(forget)}
		err = db.NewInsert().Model(c).
			On(`CONFLICT ("key") DO UPDATE`).
			Set(`"count" = CASE WHEN rate_counter.expires_at <= EXCLUDED.window_start THEN 1 ELSE rate_counter."count" + 1 END`).
			Set("window_start = EXCLUDED.window_start").
			Set("expires_at = EXCLUDED.expires_at").
			Returning(`"count"`).
			Scan(ctx, &c.Count)
		if err != nil {
			return 0, 0, s.wrap(fmt.Sprintf("hit backoff counter %q", key), err)
		}
		return c.Count, 0, nil
	}
	for range 5 {
		var cur RateCounter
		found := true
		if err := db.NewSelect().Model(&cur).Where(`"key" = ?`, key).Scan(ctx); err != nil {
			if classify(err) != ErrNotFound {
				return 0, 0, s.wrap(fmt.Sprintf("read backoff counter %q", key), err)
			}
			found = false
		}
		n := cur.Count
		if !found || !cur.ExpiresAt.After(now) {
			n = 0
		}
		if n > 0 {
			// Without a delay nothing waits, even if a concurrent attempt
			// whose clock read came later wrote first.
			if d := wait(n); d > 0 && now.Before(cur.WindowStart.Add(d)) {
				return n, cur.WindowStart.Add(d).Sub(now), nil
			}
		}
		expect := cur.Count
		if !found {
			expect = -1 // a row written meanwhile is someone else's attempt
		}
		c := &RateCounter{Key: key, Count: n + 1, WindowStart: now, ExpiresAt: now.Add(forget)}
		var got []int
		err := db.NewInsert().Model(c).
			On(`CONFLICT ("key") DO UPDATE`).
			Set(`"count" = EXCLUDED."count"`).
			Set("window_start = EXCLUDED.window_start").
			Set("expires_at = EXCLUDED.expires_at").
			Where(`rate_counter."count" = ?`, expect).
			Returning(`"count"`).
			Scan(ctx, &got)
		if err != nil && classify(err) != ErrNotFound {
			return 0, 0, s.wrap(fmt.Sprintf("hit backoff counter %q", key), err)
		}
		if len(got) == 1 {
			return got[0], 0, nil
		}
		// Another attempt counted first: look again.
	}
	return 0, time.Second, nil
}
