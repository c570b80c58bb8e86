package wire

import (
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// TestFreshnessOnTheWire: prompt_login, max_age_seconds and auth_time
// survive the round trip; an absent max_age stays absent (0 is a value),
// and out-of-range numbers from a plugin or the broker are bounded.
func TestFreshnessOnTheWire(t *testing.T) {
	zero, hour := time.Duration(0), time.Hour
	for _, req := range []connectors.LoginRequest{
		{State: "s", CallbackURL: "cb"},
		{State: "s", CallbackURL: "cb", ForceLogin: true},
		{State: "s", CallbackURL: "cb", MaxAge: &zero},
		{State: "s", CallbackURL: "cb", MaxAge: &hour},
	} {
		got := loginURLFromProto(loginURLToProto(req))
		if got.ForceLogin != req.ForceLogin || (got.MaxAge == nil) != (req.MaxAge == nil) ||
			(got.MaxAge != nil && *got.MaxAge != *req.MaxAge) {
			t.Errorf("round trip of %+v gave %+v", req, got)
		}
	}
	huge, negative := int64(1<<62), int64(-5)
	if got := loginURLFromProto(&connectorpb.LoginURLRequest{MaxAgeSeconds: &huge}); got.MaxAge == nil || *got.MaxAge <= 0 {
		t.Errorf("huge max_age_seconds became %v", got.MaxAge)
	}
	if got := loginURLFromProto(&connectorpb.LoginURLRequest{MaxAgeSeconds: &negative}); got.MaxAge == nil || *got.MaxAge != 0 {
		t.Errorf("negative max_age_seconds became %v", got.MaxAge)
	}

	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	p, err := identityToProto(connectors.Identity{Subject: "s", AuthTime: at})
	if err != nil {
		t.Fatal(err)
	}
	back, err := identityFromProto(p)
	if err != nil || !back.AuthTime.Equal(at) {
		t.Errorf("auth_time round trip: %v, %v", back.AuthTime, err)
	}
	for _, bad := range []int64{0, -1, 1 << 60} {
		id, err := identityFromProto(&connectorpb.Identity{Subject: "s", AuthTime: bad})
		if err != nil || !id.AuthTime.IsZero() {
			t.Errorf("auth_time %d became %v (%v), want unknown", bad, id.AuthTime, err)
		}
	}
}
