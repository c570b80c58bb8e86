package federation_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
)

// BenchmarkFederatedLogin measures a federated login through Okta's preset
// (a real connector-oidc process, SQLite) from the authorization request to
// the code for the client. broker-ms/login is the broker's share: the
// authorize, /connect and /callback requests (handlers, storage, plugin
// round trips, CompleteLogin) minus the time the fake upstream spent
// answering the plugin (code redemption, JWKS); the user's visit to the
// upstream's login page is not counted. Target: ≤ 2 ms.
func BenchmarkFederatedLogin(b *testing.B) {
	var upstreamNS atomic.Int64
	e := newEnv(b, envOptions{connectors: oktaOnly, upstream: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			h.ServeHTTP(w, r)
			upstreamNS.Add(int64(time.Since(start)))
		})
	}})
	ctx := context.Background()
	// login returns the broker's time before and after the upstream.
	login := func() (out, back time.Duration) {
		br := e.browser()
		ar := spaAuth()
		start := time.Now()
		up := e.startUpstream(br, ar, "okta")
		out = time.Since(start)
		cb, err := fakeidp.Login(ctx, up.String(), "1001")
		if err != nil {
			b.Fatal(err)
		}
		before := upstreamNS.Load()
		start = time.Now()
		codeFrom(b, br.get(cb.String()))
		back = time.Since(start) - time.Duration(upstreamNS.Load()-before)
		return out, back
	}
	login() // warm up: discovery, JWKS, connections
	var outTotal, backTotal time.Duration
	b.ResetTimer()
	for b.Loop() {
		out, back := login()
		outTotal += out
		backTotal += back
	}
	n := float64(b.N) * 1e6
	b.ReportMetric(float64(outTotal+backTotal)/n, "broker-ms/login")
	b.ReportMetric(float64(outTotal)/n, "authorize+connect-ms")
	b.ReportMetric(float64(backTotal)/n, "callback-ms")
}
