package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// clientCacheTTL is how long a client loaded for fosite is reused: every
// token request authenticates its client, and the client rarely changes.
// A changed, deleted or re-keyed client takes effect on each replica
// within this time.
const clientCacheTTL = 5 * time.Second

// clientCache remembers clients that exist (unknown ids always go to the
// database, so they cannot fill the cache).
type clientCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]cachedClient
}

type cachedClient struct {
	client  *storage.Client
	expires time.Time
}

func newClientCache(ttl time.Duration) *clientCache {
	return &clientCache{ttl: ttl, entries: map[string]cachedClient{}}
}

// get returns the client id from the cache or load.
func (c *clientCache) get(ctx context.Context, id string, load func(context.Context, string) (*storage.Client, error)) (*storage.Client, error) {
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

// GetClient implements fosite.ClientManager through the cache.
func (t *txStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if t.clients == nil {
		c, err := t.Store.GetClient(ctx, id)
		return c, unavailable(err)
	}
	c, err := t.clients.get(ctx, id, t.Store.LookupClient)
	if err != nil {
		return nil, unavailable(err)
	}
	return c, nil
}

// serverError is the error for a request that failed on the server side:
// temporarily_unavailable when the database could not be reached (RFC 6749
// section 4.1.2.1 defines it for the redirect, where no 503 can travel),
// else server_error.
func serverError(err error) error {
	if down := outage(err); down != nil {
		return down
	}
	return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
}

// unavailable marks any failure of a client lookup other than "not found"
// as storage.ErrUnavailable: fosite turns every client lookup error into
// invalid_client, and a valid client must not be told it is invalid while
// the database is down or restarting.
func unavailable(err error) error {
	if err == nil || errors.Is(err, fosite.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// outage is the answer for a request that failed on storage.ErrUnavailable
// (nil when err is something else).
func outage(err error) error {
	if !errors.Is(err, storage.ErrUnavailable) {
		return nil
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error()).
		WithHint("The authorization server cannot reach its database right now; try again shortly.")
}
