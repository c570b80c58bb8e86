package plugins

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// BenchmarkCallRoundTrip measures one plugin call (LoginURL) from the
// broker's side: encode, gRPC over the local socket, the plugin's work,
// decode. Target: p50 ≤ 0.3 ms.
func BenchmarkCallRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name  string
		plain bool
	}{{"automtls", false}, {"plaintext", true}} {
		b.Run(tc.name, func(b *testing.B) {
			p, _ := launchTest(b, func(c *Config) { c.DisableAutoMTLS = tc.plain })
			ctx := context.Background()
			req := connectors.LoginRequest{State: "bench-state", CallbackURL: "https://broker.test/callback/test"}
			if _, err := p.LoginURL(ctx, req); err != nil {
				b.Fatal(err)
			}
			durations := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if _, err := p.LoginURL(ctx, req); err != nil {
					b.Fatal(err)
				}
				durations = append(durations, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, durations)
		})
	}
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
