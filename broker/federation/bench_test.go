package federation_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
)

// BenchmarkFederatedLogin measures a federated login through Okta's preset
// (a real connector-oidc process, SQLite), from the authorization request
// to the code for the client, timed inside the servers:
//
//   - federation-ms: /connect and /callback (these handlers, storage, both
//     plugin round trips and the plugin's own work, the broker's
//     CompleteLogin), minus the time the fake upstream spent answering the
//     plugin (code redemption, JWKS). Target: ≤ 2 ms. connect-ms and
//     callback-ms are its parts.
//   - authorize-ms: the broker's /oauth2/auth that parks the request, for
//     comparison; broker-ms is the sum.
//   - plugin-ms: the part of federation-ms spent in calls to the plugin
//     (the gRPC round trips and the plugin's own work, with its requests
//     to the upstream but not the upstream's time); the rest is the
//     broker process's own.
//
// The user's visit to the upstream's login page is not counted.
func BenchmarkFederatedLogin(b *testing.B) {
	var upstreamNS, authorizeNS, connectNS, callbackNS, pluginNS, upstreamInFederationNS atomic.Int64
	e := newEnv(b, envOptions{
		connectors: oktaOnly,
		upstream: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				h.ServeHTTP(w, r)
				upstreamNS.Add(int64(time.Since(start)))
			})
		},
		brokerHandler: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				start := time.Now()
				before := upstreamNS.Load()
				h.ServeHTTP(w, r)
				d := int64(time.Since(start))
				switch {
				case r.URL.Path == "/oauth2/auth":
					authorizeNS.Add(d)
				case strings.HasPrefix(r.URL.Path, "/connect/"):
					up := upstreamNS.Load() - before
					upstreamInFederationNS.Add(up)
					connectNS.Add(d - up)
				case strings.HasPrefix(r.URL.Path, "/callback/"):
					up := upstreamNS.Load() - before
					upstreamInFederationNS.Add(up)
					callbackNS.Add(d - up)
				}
			})
		},
	})
	e.fed.Plugin("okta").SetCallObserver(func(_ string, d time.Duration, _ error) { pluginNS.Add(int64(d)) })
	ctx := context.Background()
	login := func() {
		br := e.browser()
		ar := spaAuth()
		up := e.startUpstream(br, ar, "okta")
		cb, err := fakeidp.Login(ctx, up.String(), "1001")
		if err != nil {
			b.Fatal(err)
		}
		codeFrom(b, br.get(cb.String()))
	}
	login() // warm up: discovery, JWKS, connections
	for _, v := range []*atomic.Int64{&authorizeNS, &connectNS, &callbackNS, &pluginNS, &upstreamInFederationNS} {
		v.Store(0)
	}
	b.ResetTimer()
	for b.Loop() {
		login()
	}
	n := float64(b.N) * 1e6
	fed := connectNS.Load() + callbackNS.Load()
	b.ReportMetric(float64(fed)/n, "federation-ms")
	b.ReportMetric(float64(connectNS.Load())/n, "connect-ms")
	b.ReportMetric(float64(callbackNS.Load())/n, "callback-ms")
	b.ReportMetric(float64(pluginNS.Load()-upstreamInFederationNS.Load())/n, "plugin-ms")
	b.ReportMetric(float64(authorizeNS.Load())/n, "authorize-ms")
	b.ReportMetric(float64(fed+authorizeNS.Load())/n, "broker-ms")
}
