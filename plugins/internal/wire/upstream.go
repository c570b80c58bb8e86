package wire

import (
	"context"
	"math"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/bridgekeeper/bridgekeeper/connectors/upstreamtime"
)

// upstreamTimeKey is the trailer in which a plugin may report, in whole
// microseconds, how long a call waited for the upstream identity provider
// (its HTTP round trips, network included). Optional: a plugin that does
// not send it reports nothing.
const upstreamTimeKey = "bridgekeeper-upstream-us"

// ReportUpstreamTime starts an upstreamtime.Clock for every call and sends
// what it counted in the upstreamTimeKey trailer (plugin side). Connectors
// whose HTTP client uses upstreamtime.Transport are timed.
func ReportUpstreamTime(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, clock := upstreamtime.Start(ctx)
	resp, err := handler(ctx, req)
	if d := clock.Total(); d > 0 {
		// Only fails when the call's stream is gone; nothing to report to then.
		_ = grpc.SetTrailer(ctx, metadata.Pairs(upstreamTimeKey, strconv.FormatInt(d.Microseconds(), 10)))
	}
	return resp, err
}

// UpstreamTime reads the upstreamTimeKey trailer (host side); zero when it is
// missing or not a plausible duration.
func UpstreamTime(trailer metadata.MD) time.Duration {
	vs := trailer.Get(upstreamTimeKey)
	if len(vs) == 0 {
		return 0
	}
	us, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil || us < 0 || us > int64(math.MaxInt64/time.Microsecond) {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}
