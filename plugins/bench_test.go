package plugins

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// BenchmarkCallRoundTrip measures one plugin call (LoginURL) from the
// broker's side: encode, gRPC over the local socket, the plugin's work,
// decode. Target: p50 ≤ 0.3 ms. The broker logs at its default level,
// info, so the plugin writes no line per call. "after-idle" waits 5 ms
// before each call, as a login's calls do: both processes have gone to
// sleep, and the call's time includes waking them.
func BenchmarkCallRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name  string
		plain bool
		idle  time.Duration
	}{{"automtls", false, 0}, {"plaintext", true, 0}, {"automtls-after-idle", false, 5 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			p, _ := launchTestAt(b, slog.LevelInfo, func(c *Config) { c.DisableAutoMTLS = tc.plain })
			ctx := context.Background()
			req := connectors.LoginRequest{State: "bench-state", CallbackURL: "https://broker.test/callback/test"}
			if _, err := p.Connector().LoginURL(ctx, req); err != nil {
				b.Fatal(err)
			}
			durations := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				if tc.idle > 0 {
					b.StopTimer()
					time.Sleep(tc.idle)
					b.StartTimer()
				}
				start := time.Now()
				if _, err := p.Connector().LoginURL(ctx, req); err != nil {
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
