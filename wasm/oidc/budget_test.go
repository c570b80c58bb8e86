package oidc

import (
	"context"
	"testing"
	"time"
)

// BenchmarkAuthorizeURL is the cost of starting a login: PKCE verifier and
// S256 challenge, state, nonce, storing the pending login and building the
// URL (discovery already cached). Budget: ≤ 1 ms (issue 5).
func BenchmarkAuthorizeURL(b *testing.B) {
	e := newEnv(b, "RS256")
	c, err := New(e.config(), e.deps())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.AuthorizeURL(ctx, AuthOptions{}); err != nil { // warm the discovery cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.AuthorizeURL(ctx, AuthOptions{IDPHint: "okta", AppState: "/checkout"}); err != nil {
			b.Fatal(err)
		}
	}
}

// Logins started and never finished (a tab closed on the login page) do not
// pile up: at most maxPending are kept, the newest ones.
func TestPendingLoginsAreBounded(t *testing.T) {
	e := newEnv(t, "RS256")
	c, err := New(e.config(), e.deps())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var last string
	for range 3 * maxPending {
		e.clock.Advance(time.Second)
		if last, err = c.AuthorizeURL(ctx, AuthOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := c.loadPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != maxPending {
		t.Fatalf("%d pending logins kept, want %d", len(pending), maxPending)
	}
	if _, err := c.HandleCallback(ctx, e.authorize(last)); err != nil {
		t.Fatalf("the newest login no longer completes: %v", err)
	}
}
