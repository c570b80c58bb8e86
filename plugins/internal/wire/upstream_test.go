package wire

import (
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
)

// TestUpstreamTimeTrailer: the host reads a plugin's upstream time only
// when it is a plausible number of microseconds; anything else counts as
// not reported.
func TestUpstreamTimeTrailer(t *testing.T) {
	for _, tc := range []struct {
		trailer metadata.MD
		want    time.Duration
	}{
		{nil, 0},
		{metadata.Pairs(upstreamTimeKey, "1500"), 1500 * time.Microsecond},
		{metadata.Pairs(upstreamTimeKey, "0"), 0},
		{metadata.Pairs(upstreamTimeKey, "-5"), 0},
		{metadata.Pairs(upstreamTimeKey, "1.5ms"), 0},
		{metadata.Pairs(upstreamTimeKey, ""), 0},
		{metadata.Pairs(upstreamTimeKey, "99999999999999999999"), 0}, // overflows int64
		{metadata.Pairs(upstreamTimeKey, "9223372036854776"), 0},     // overflows a Duration
		{metadata.Pairs("bridgekeeper-error-reason", "POLICY"), 0},
	} {
		if got := UpstreamTime(tc.trailer); got != tc.want {
			t.Errorf("UpstreamTime(%v) = %v, want %v", tc.trailer, got, tc.want)
		}
	}
}
