package rp_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// longToken signs a token valid for a day, so that clock jumps in cache
// tests do not expire it.
func longToken(iss *rptest.Issuer) string {
	return iss.Sign(rptest.Claims{"aud": testAudience, "exp": time.Now().Add(24 * time.Hour).Unix()})
}

func TestRotationWithoutRestart(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now))
	oldKID := iss.SigningKeyID()
	oldToken := longToken(iss)
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("old token: %v", err)
	}
	fetches := iss.JWKSFetches()

	// The issuer starts signing with a key the verifier has never seen:
	// one refetch, and the new token is accepted.
	clk.Advance(rp.DefaultRefetchInterval)
	iss.Rotate(jose.RS256)
	newToken := longToken(iss)
	if _, err := v.Verify(t.Context(), newToken); err != nil {
		t.Fatalf("token signed by the new key: %v", err)
	}
	if got := iss.JWKSFetches() - fetches; got != 1 {
		t.Errorf("JWKS fetched %d times for the new key, want 1", got)
	}
	if _, err := v.Verify(t.Context(), oldToken); err != nil {
		t.Fatalf("old key still published, yet: %v", err)
	}

	// The old key leaves the JWKS; once the cache expires, its tokens fail.
	iss.Remove(oldKID)
	clk.Advance(rp.DefaultCacheTTL + time.Second)
	if _, err := v.Verify(t.Context(), oldToken); !errors.Is(err, rp.ErrUnknownKey) {
		t.Fatalf("token of a removed key: err = %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(t.Context(), newToken); err != nil {
		t.Fatalf("new token after refresh: %v", err)
	}
}

func TestUnknownKeyRefetchIsRateLimited(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now), rp.WithRefetchInterval(10*time.Second))
	fetches := iss.JWKSFetches()

	// A token naming a key the issuer never published.
	stranger := rptest.NewIssuer(t)
	garbage := stranger.Sign(rptest.Claims{"iss": iss.URL, "aud": testAudience})
	clk.Advance(11 * time.Second)
	for range 20 {
		if _, err := v.Verify(t.Context(), garbage); !errors.Is(err, rp.ErrUnknownKey) {
			t.Fatalf("err = %v, want ErrUnknownKey", err)
		}
	}
	if got := iss.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("20 unknown-kid tokens caused %d fetches, want 1", got)
	}

	// Within the interval even a real new key waits for the next window…
	iss.Rotate(jose.ES256)
	fresh := longToken(iss)
	if _, err := v.Verify(t.Context(), fresh); !errors.Is(err, rp.ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey inside the rate limit", err)
	}
	// …and is accepted once the window has passed.
	clk.Advance(10 * time.Second)
	if _, err := v.Verify(t.Context(), fresh); err != nil {
		t.Fatalf("new key after the interval: %v", err)
	}
	if got := iss.JWKSFetches() - fetches; got != 2 {
		t.Fatalf("fetches = %d, want 2", got)
	}
}

func TestUnknownKeyRefetchIsSingleFlight(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now))
	fetches := iss.JWKSFetches()
	clk.Advance(rp.DefaultRefetchInterval)
	iss.Rotate(jose.RS256)
	token := longToken(iss)

	const workers = 32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			<-start
			_, err := v.Verify(t.Context(), token)
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	// Goroutines arriving during the refetch share it; those arriving
	// after it find the key (or hit the rate limit and then find the key).
	if got := iss.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("%d concurrent verifications of a new key caused %d fetches, want 1", workers, got)
	}
}

func TestCacheHonoursMaxAgeWithinBounds(t *testing.T) {
	cases := []struct {
		maxAge         int // seconds, from the issuer
		floor, ceiling time.Duration
		noFetch, fetch time.Duration // clock jumps that must not / must refetch
	}{
		{maxAge: 120, floor: time.Minute, ceiling: time.Hour, noFetch: 110 * time.Second, fetch: 121 * time.Second},
		{maxAge: 0, floor: time.Minute, ceiling: time.Hour, noFetch: 50 * time.Second, fetch: 61 * time.Second},
		{maxAge: 86400, floor: time.Minute, ceiling: time.Hour, noFetch: 59 * time.Minute, fetch: 61 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("max-age=%d", tc.maxAge), func(t *testing.T) {
			iss := rptest.NewIssuer(t)
			iss.SetMaxAge(tc.maxAge)
			clk := newClock()
			v := newVerifier(t, iss, rp.WithClock(clk.Now), rp.WithCacheBounds(tc.floor, tc.ceiling))
			token := longToken(iss)
			fetches := iss.JWKSFetches()
			clk.Advance(tc.noFetch)
			if _, err := v.Verify(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			if got := iss.JWKSFetches() - fetches; got != 0 {
				t.Fatalf("fetched %d times after %v", got, tc.noFetch)
			}
			clk.Advance(tc.fetch - tc.noFetch)
			if _, err := v.Verify(t.Context(), token); err != nil {
				t.Fatal(err)
			}
			if got := iss.JWKSFetches() - fetches; got != 1 {
				t.Fatalf("fetched %d times after %v, want 1", got, tc.fetch)
			}
		})
	}
}

func TestIssuerOutage(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now))
	token := longToken(iss)
	iss.SetDown(true)

	// Cache expired and the issuer is down: known keys keep working.
	clk.Advance(2 * time.Hour)
	if _, err := v.Verify(t.Context(), token); err != nil {
		t.Fatalf("stale key refused during an outage: %v", err)
	}
	// A key we never saw cannot be checked: not invalid, unavailable.
	iss.Rotate(jose.RS256)
	clk.Advance(time.Minute)
	_, err := v.Verify(t.Context(), longToken(iss))
	if !errors.Is(err, rp.ErrKeysUnavailable) || errors.Is(err, rp.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrKeysUnavailable", err)
	}
	// Back up: the next window fetches and accepts.
	iss.SetDown(false)
	clk.Advance(time.Minute)
	if _, err := v.Verify(t.Context(), longToken(iss)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestUnknownKeyInsideRefetchIntervalIsRefusedAtOnce pins what
// WithRefetchInterval promises: inside the interval, a token naming a key the
// verifier lacks is not held until the interval ends (a request would hang
// for up to the interval); it is refused at once, without a fetch, and the
// middleware answers 401 invalid_token, not 503.
func TestUnknownKeyInsideRefetchIntervalIsRefusedAtOnce(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss, rp.WithRefetchInterval(time.Hour)) // real clock
	fetches := iss.JWKSFetches()
	iss.Rotate(jose.ES256)
	fresh := longToken(iss)

	start := time.Now()
	_, err := v.Verify(t.Context(), fresh)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("Verify of an unknown kid inside the interval took %v: it waited", elapsed)
	}
	if !errors.Is(err, rp.ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if got := iss.JWKSFetches() - fetches; got != 0 {
		t.Fatalf("%d JWKS fetches inside the refetch interval, want 0", got)
	}

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+fresh)
	v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("handler reached with a token of an unknown key")
	})).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("middleware: %d %q, want 401 invalid_token", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
