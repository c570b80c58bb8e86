package dpop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrCacheFull is returned by a MemoryReplayCache holding its maximum of
// unexpired entries: it refuses to forget one (that would let its proof be
// replayed), so the caller should answer 503 and let the window pass.
var ErrCacheFull = errors.New("dpop: replay cache full")

// MemoryReplayCache is a ReplayCache for one process, bounded in size. Several
// replicas of a service each have their own, so a proof used at one is not
// refused at another: share a database-backed cache between them instead.
type MemoryReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]time.Time
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewMemoryReplayCache returns a cache holding at most max entries (100 000
// if ≤ 0).
func NewMemoryReplayCache(max int) *MemoryReplayCache {
	if max <= 0 {
		max = 100_000
	}
	return &MemoryReplayCache{max: max, entries: make(map[string]time.Time)}
}

// Claim implements ReplayCache.
func (c *MemoryReplayCache) Claim(_ context.Context, key string, expires time.Time) error {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.entries[key]; ok && now.Before(exp) {
		return ErrReplay
	}
	if len(c.entries) >= c.max {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return fmt.Errorf("%w (%d entries)", ErrCacheFull, c.max)
		}
	}
	c.entries[key] = expires
	return nil
}
