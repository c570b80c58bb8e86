// Package upstreamtime measures how long a connector waits for its upstream
// identity provider during one call, so that the broker can tell a slow
// provider from a slow plugin.
//
// A connector sends its upstream requests through Transport; whoever runs
// the call (the plugin SDK) starts a Clock in the call's context and reads
// it when the call returns. Requests made with a context that carries no
// Clock pass through untimed.
package upstreamtime

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// Clock adds up the wall time during which at least one upstream request
// of a call was in flight: from sending it until its response body was read
// to the end or closed. Overlapping requests count once. Safe for
// concurrent use.
type Clock struct {
	now      func() time.Time
	mu       sync.Mutex
	inFlight int
	since    time.Time
	total    time.Duration
}

type clockKey struct{}

// Start returns a context that carries a new Clock, and the Clock.
func Start(ctx context.Context) (context.Context, *Clock) {
	c := &Clock{now: time.Now}
	return context.WithValue(ctx, clockKey{}, c), c
}

// FromContext returns the Clock of ctx, or nil.
func FromContext(ctx context.Context) *Clock {
	c, _ := ctx.Value(clockKey{}).(*Clock)
	return c
}

// Total is the time counted so far, including requests still in flight.
func (c *Clock) Total() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight > 0 {
		return c.total + c.now().Sub(c.since)
	}
	return c.total
}

func (c *Clock) begin() {
	c.mu.Lock()
	if c.inFlight == 0 {
		c.since = c.now()
	}
	c.inFlight++
	c.mu.Unlock()
}

func (c *Clock) end() {
	c.mu.Lock()
	c.inFlight--
	if c.inFlight == 0 {
		c.total += c.now().Sub(c.since)
	}
	c.mu.Unlock()
}

// Transport returns a RoundTripper that times each request on the Clock of
// its context before handing it to base (http.DefaultTransport when nil).
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base}
}

type transport struct{ base http.RoundTripper }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := FromContext(req.Context())
	if c == nil {
		return t.base.RoundTrip(req)
	}
	c.begin()
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		c.end()
		return resp, err
	}
	resp.Body = &timedBody{ReadCloser: resp.Body, clock: c}
	return resp, nil
}

// timedBody stops its request's time at the end of the body or at Close,
// whichever comes first.
type timedBody struct {
	io.ReadCloser
	clock *Clock
	once  sync.Once
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.clock.end)
	}
	return n, err
}

func (b *timedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.clock.end)
	return err
}
