package federation_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestCallbackAfterThePendingLoginExpired backs docs/federation.md (the
// broker accepts the provider's answer "only before the pending login
// expires"): a callback that arrives after session.pending_login_lifetime
// is the "Sign-in expired" page, with no session and no code, even though
// the provider signed the user in.
func TestCallbackAfterThePendingLoginExpired(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newEnv(t, envOptions{backend: b, brokerConfig: func(_ *env, c *broker.Config) { c.PendingLoginLifetime = time.Second }})
		br := e.browser()
		back := e.upstreamLogin(e.startUpstream(br, spaAuth(), "okta"), "1001")
		time.Sleep(1500 * time.Millisecond)
		p := br.get(back.String())
		errorPage(t, br, e, p, http.StatusBadRequest, "Sign-in expired")
		if !strings.Contains(p.body, `href="`+e.issuer+`/"`) {
			t.Errorf("the expired sign-in page has no way on (a link to the broker's landing page):\n%s", p.body)
		}

		// In time, the same steps sign in.
		e2 := newEnv(t, envOptions{backend: b, brokerConfig: func(_ *env, c *broker.Config) { c.PendingLoginLifetime = time.Minute }})
		if claims, _ := e2.login(e2.browser(), "okta", "1001"); claims["idp"] != "okta" {
			t.Fatalf("a login in time: %v", claims)
		}
	})
}

// TestUpstreamOutageRevokesNothing backs docs/federation.md and SECURITY.md
// (RFC 9700 §2.2.1 row): when the provider is down at a refresh grant's
// upstream re-check, the grant is 503 temporarily_unavailable and nothing
// is revoked: the same refresh token works once the provider is back.
func TestUpstreamOutageRevokesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		var down atomic.Bool
		e := newEnv(t, envOptions{backend: b, connectors: oktaOnly, brokerConfig: func(e *env, c *broker.Config) {
			c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
		}, upstream: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if down.Load() && strings.HasSuffix(r.URL.Path, "/token") {
					http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
					return
				}
				h.ServeHTTP(w, r)
			})
		}})
		_, tr := e.login(e.browser(), "okta", "1001")
		if tr.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		down.Store(true)
		if r := e.refresh(tr.RefreshToken); r.status != http.StatusServiceUnavailable || r.Error != "temporarily_unavailable" {
			t.Fatalf("refresh with the provider down: %d %q, want 503 temporarily_unavailable", r.status, r.Error)
		}
		down.Store(false)
		if r := e.refresh(tr.RefreshToken); r.status != http.StatusOK || r.RefreshToken == "" {
			t.Fatalf("the same refresh token once the provider is back: %d %q", r.status, r.Error)
		}
	})
}
