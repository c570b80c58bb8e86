package storage

import (
	"context"
	"sync"
	"time"
)

// clientCache remembers clients that exist (unknown ids always go to the
// database, so they cannot fill the cache).
type clientCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]cachedClient
}

type cachedClient struct {
	client  *Client
	expires time.Time
}

func newClientCache(ttl time.Duration) *clientCache {
	return &clientCache{ttl: ttl, entries: map[string]cachedClient{}}
}

// get returns the client id from the cache or load.
func (c *clientCache) get(ctx context.Context, id string, load func(context.Context, string) (*Client, error)) (*Client, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.client, nil
	}
	client, err := load(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= 10000 { // bounded: drop everything stale
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
	}
	c.entries[id] = cachedClient{client: client, expires: now.Add(c.ttl)}
	return client, nil
}
