package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// youngNextWarning: promoting a next key published for less than this logs a
// warning, since relying parties may still hold a JWKS without it.
const youngNextWarning = time.Hour

// maxSyncRounds bounds how often one sync re-reads storage after changing it.
const maxSyncRounds = 4

// view is the stored keys sorted into their states. Every replica derives the
// same view from the same rows: among the keys not retired, the oldest
// (CreatedAt, then kid) is current, the second is next, and any further key
// is surplus — the leftover of a race between replicas — to be retired.
type view struct {
	current, next *storage.SigningKey
	surplus       []*storage.SigningKey
	retired       []*storage.SigningKey // oldest first
	expired       []*storage.SigningKey // past RemoveAt: to delete
}

func classify(rows []storage.SigningKey, now time.Time) view {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b storage.SigningKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.KID, b.KID)
	})
	var v view
	for i := range sorted {
		r := &sorted[i]
		switch {
		case r.RetiredAt != nil && r.RemoveAt != nil && !now.Before(*r.RemoveAt):
			v.expired = append(v.expired, r)
		case r.RetiredAt != nil:
			v.retired = append(v.retired, r)
		case v.current == nil:
			v.current = r
		case v.next == nil:
			v.next = r
		default:
			v.surplus = append(v.surplus, r)
		}
	}
	return v
}

// Reload re-reads storage: it picks up keys other replicas created or
// retired, retires surplus keys left by concurrent starts, and drops keys
// past their RemoveAt from the JWKS and from storage. On error the keys in
// memory stay as they were.
func (m *Manager) Reload(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sync(ctx, false)
}

// Rotate promotes the next key to current, retires the current key (it stays
// in the JWKS until now + MaxTokenLifetime + a margin) and creates a new
// next key. When another replica has already retired the key this Manager
// signs with, Rotate only reloads: that replica's rotation stands.
func (m *Manager) Rotate(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotate(ctx, m.state.Load())
}

// Run keeps the keys fresh until ctx is done: every ReloadInterval it
// reloads, creates a next key if none is published, and rotates once the
// next key has been published for RotationPeriod (which, since a rotation
// creates the new next key, is when the current key has signed that long).
// Errors are logged; the keys in memory stay usable.
func (m *Manager) Run(ctx context.Context) {
	ticks := m.ticks
	if ticks == nil {
		t := time.NewTicker(m.opts.ReloadInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			err := m.tick(ctx)
			if err != nil && ctx.Err() == nil {
				m.log.Error("signing key maintenance failed", "err", err)
			}
			if m.ticked != nil {
				select {
				case m.ticked <- err:
				case <-ctx.Done():
				}
			}
		}
	}
}

func (m *Manager) tick(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.sync(ctx, true); err != nil {
		return err
	}
	s := m.state.Load()
	if m.opts.RotationPeriod > 0 && s.next != nil && !m.opts.Now().Before(s.nextCreated.Add(m.opts.RotationPeriod)) {
		return m.rotate(ctx, s)
	}
	return nil
}

// rotate retires s.current; m.mu is held.
func (m *Manager) rotate(ctx context.Context, s *keyState) error {
	now := m.opts.Now()
	won, err := m.store.RetireSigningKey(ctx, s.current.kid, now, m.removeAt(now))
	if errors.Is(err, storage.ErrNotFound) { // retired and already removed elsewhere
		won, err = false, nil
	}
	if err != nil {
		return fmt.Errorf("retire signing key %s: %w", s.current.kid, err)
	}
	if !won {
		m.log.Info("signing key already retired by another replica; reloading", "kid", s.current.kid)
		return m.sync(ctx, false)
	}
	if s.next == nil {
		m.log.Warn("rotating without a published next key: the new key signs before relying parties have seen it", "retired", s.current.kid)
	} else {
		if age := now.Sub(s.nextCreated); age < youngNextWarning {
			m.log.Warn("promoting a recently published key: relying parties that cached the JWKS earlier must refetch it",
				"kid", s.next.kid, "published", age.Round(time.Second).String())
		}
		m.log.Info("rotated signing key", "retired", s.current.kid, "current", s.next.kid, "remove_at", m.removeAt(now))
	}
	return m.sync(ctx, true)
}

// latest returns the newest CreatedAt among rows (zero when there are none).
func latest(rows []storage.SigningKey) time.Time {
	var t time.Time
	for _, r := range rows {
		if r.CreatedAt.After(t) {
			t = r.CreatedAt
		}
	}
	return t
}

func (m *Manager) removeAt(retiredAt time.Time) time.Time {
	return retiredAt.Add(m.opts.MaxTokenLifetime + m.margin)
}

// sync reads storage, settles it (retires surplus keys; with create, makes
// sure a current and a next key exist), deletes keys past RemoveAt and
// publishes the result. m.mu is held.
func (m *Manager) sync(ctx context.Context, create bool) error {
	var v view
	for round := 0; ; round++ {
		rows, err := m.store.ListSigningKeys(ctx)
		if err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
		now := m.opts.Now()
		v = classify(rows, now)
		missing := create && (v.current == nil || v.next == nil)
		if round == maxSyncRounds || (len(v.surplus) == 0 && !missing) {
			break
		}
		for _, r := range v.surplus {
			if _, err := m.store.RetireSigningKey(ctx, r.KID, now, m.removeAt(now)); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("retire surplus signing key %s: %w", r.KID, err)
			}
			m.log.Info("retired surplus signing key left by concurrent key creation", "kid", r.KID)
		}
		if missing {
			if err := m.create(ctx, v.current == nil, latest(rows)); err != nil {
				return err
			}
		}
	}
	for _, r := range v.expired {
		if err := m.store.DeleteSigningKey(ctx, r.KID); err != nil {
			// Harmless: it is out of the JWKS already; the next reload retries.
			m.log.Warn("cannot delete expired signing key", "kid", r.KID, "err", err)
			continue
		}
		m.log.Info("deleted expired signing key", "kid", r.KID)
	}
	if v.current == nil {
		return errors.New("no current signing key in storage")
	}

	keep := make(map[string]bool)
	material := func(r *storage.SigningKey) (*keyMaterial, error) {
		keep[r.KID] = true
		if km, ok := m.loaded[r.KID]; ok && km.alg == r.Algorithm {
			return km, nil
		}
		km, err := load(m.opts.EncryptionKey, r)
		if err != nil {
			return nil, err
		}
		m.loaded[r.KID] = km
		return km, nil
	}
	current, err := material(v.current)
	if err != nil {
		return err
	}
	var next *keyMaterial
	var nextCreated time.Time
	if v.next != nil {
		if next, err = material(v.next); err != nil {
			return err
		}
		nextCreated = v.next.CreatedAt
	}
	var retired []*keyMaterial
	// Newest first; surplus keys (only when storage kept changing) are
	// published too, since a replica may have signed with one.
	for _, rows := range [][]*storage.SigningKey{v.surplus, v.retired} {
		for i := len(rows) - 1; i >= 0; i-- {
			km, err := material(rows[i])
			if err != nil {
				return err
			}
			retired = append(retired, km)
		}
	}
	for kid := range m.loaded {
		if !keep[kid] {
			delete(m.loaded, kid)
		}
	}

	s, err := buildState(current, next, nextCreated, retired)
	if err != nil {
		return err
	}
	if old := m.state.Load(); old != nil && old.fingerprint == s.fingerprint {
		return nil // unchanged: keep the cached document and ETag
	}
	m.state.Store(s)
	return nil
}

// create generates, stores and caches a key: active at once when active,
// else as the next key. Its CreatedAt is after every stored key's (after),
// even when this replica's clock is behind, since the order of CreatedAt
// decides which key is current. m.mu is held.
func (m *Manager) create(ctx context.Context, active bool, after time.Time) error {
	now := m.opts.Now().Truncate(time.Microsecond) // the resolution of every SQL backend
	if !now.After(after) {
		now = after.Truncate(time.Microsecond).Add(time.Microsecond)
	}
	activateAt := now
	if !active && m.opts.RotationPeriod > 0 {
		activateAt = now.Add(m.opts.RotationPeriod)
	}
	row, km, err := generate(m.opts.Algorithm, m.opts.EncryptionKey, now, activateAt)
	if err != nil {
		return err
	}
	if err := m.store.CreateSigningKey(ctx, row); err != nil {
		return fmt.Errorf("store signing key %s: %w", row.KID, err)
	}
	m.loaded[row.KID] = km
	state := StateNext
	if active {
		state = StateCurrent
	}
	m.log.Info("created signing key", "kid", row.KID, "alg", row.Algorithm, "state", string(state))
	return nil
}
