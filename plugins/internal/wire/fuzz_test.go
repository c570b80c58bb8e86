package wire

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// Fuzz targets for what a plugin sends back: whatever bytes arrive as a
// reply, the host turns them into an identity that keeps the contract and
// the reply limits (limits.go) or into an error, without a panic. `go test` runs the seeds; `go test
// -fuzz FuzzIdentityReply ./plugins/internal/wire/` explores.

func FuzzIdentityReply(f *testing.F) {
	for _, id := range []*connectorpb.Identity{
		{Subject: "sub-1", Email: "a@example.com", EmailVerified: true, Name: "A", Groups: []string{"admins", "dev"},
			ClaimsJson: []byte(`{"tenant":"t1","n":1.5,"nested":{"x":[1,2]}}`), ConnectorData: []byte{0, 1, 2}},
		{Subject: "sub-2", ClaimsJson: []byte(`null`)},
		{Subject: "sub-3", ClaimsJson: []byte(`[1,2]`)},
		{Subject: "", Email: "no-subject@example.com"},
		{Subject: "sub-4", ClaimsJson: []byte(`{"a":`)},
		{Subject: "sub-5", Name: "\x00", Picture: "javascript:alert(1)"},
		// At a limit and one over (small seeds: large ones slow the
		// fuzzer down; TestIdentityLimits checks every boundary).
		{Subject: strings.Repeat("s", MaxSubjectBytes), Email: strings.Repeat("e", MaxEmailBytes), Groups: []string{strings.Repeat("g", MaxGroupBytes)}},
		{Subject: strings.Repeat("s", MaxSubjectBytes+1)},
		{Subject: "sub-6", Email: strings.Repeat("e", MaxEmailBytes+1)},
		{Subject: "sub-7", FamilyName: "a\x00b"},
	} {
		b, err := proto.Marshal(&connectorpb.HandleCallbackResponse{Identity: id})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x10}) // a length beyond the message
	p := Client{Logger: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, reply []byte) {
		var resp connectorpb.HandleCallbackResponse
		if err := proto.Unmarshal(reply, &resp); err != nil {
			return // gRPC refuses the reply before the host sees it
		}
		id, err := p.identity(resp.GetIdentity())
		if err != nil {
			if !errors.Is(err, ErrPluginFailed) {
				t.Fatalf("a bad reply is not ErrPluginFailed: %v", err)
			}
			return
		}
		if id.Subject == "" {
			t.Fatal("an identity without a subject passed")
		}
		for _, f := range []struct {
			name  string
			value string
			limit int
		}{
			{"subject", id.Subject, MaxSubjectBytes}, {"email", id.Email, MaxEmailBytes},
			{"name", id.Name, MaxNameBytes}, {"given_name", id.GivenName, MaxNameBytes}, {"family_name", id.FamilyName, MaxNameBytes},
			{"picture", id.Picture, MaxPictureBytes}, {"connector_data", string(id.ConnectorData), MaxConnectorDataBytes},
		} {
			if len(f.value) > f.limit || (f.name != "connector_data" && strings.Contains(f.value, "\x00")) {
				t.Fatalf("%s of %d bytes (limit %d) or with a NUL passed", f.name, len(f.value), f.limit)
			}
		}
		if id.Picture != "" && !webURL(id.Picture) {
			t.Fatalf("picture %q passed: not an http(s) URL", id.Picture)
		}
		if len(id.Groups) > MaxGroups {
			t.Fatalf("%d groups passed", len(id.Groups))
		}
		for _, g := range id.Groups {
			if len(g) > MaxGroupBytes || strings.Contains(g, "\x00") {
				t.Fatalf("group of %d bytes or with a NUL passed", len(g))
			}
		}
		if n := len(resp.GetIdentity().GetClaimsJson()); n > MaxClaimsJSONBytes {
			t.Fatalf("claims_json of %d bytes passed", n)
		}
		pid := resp.GetIdentity()
		if id.Subject != pid.GetSubject() || id.Email != pid.GetEmail() || id.EmailVerified != pid.GetEmailVerified() ||
			!slices.Equal(id.Groups, pid.GetGroups()) || string(id.ConnectorData) != string(pid.GetConnectorData()) {
			t.Fatalf("identity %+v does not match the reply %v", id, pid)
		}
		// What the host accepted survives the trip back to a plugin (Refresh
		// sends it again).
		back, err := identityToProto(id)
		if err != nil {
			t.Fatalf("an accepted identity cannot be sent back: %v", err)
		}
		again, err := identityFromProto(back)
		if err != nil || again.Subject != id.Subject || len(again.Claims) != len(id.Claims) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

func FuzzErrorReply(f *testing.F) {
	for _, c := range []struct {
		code   uint32
		msg    string
		reason string
	}{
		{uint32(codes.Unauthenticated), "revoked upstream", reasonIdentityRevoked},
		{uint32(codes.PermissionDenied), "user said no", reasonUpstreamDenied},
		{uint32(codes.InvalidArgument), "bad state", reasonInvalidCallback},
		{uint32(codes.FailedPrecondition), "policy", ""},
		{uint32(codes.FailedPrecondition), "lost config", reasonNotConfigured},
		{uint32(codes.Internal), "boom", ""},
		{uint32(codes.Internal), "boom", reasonPolicy},
		{999, "\xff", "NONSENSE"},
	} {
		f.Add(c.code, c.msg, c.reason)
	}
	known := []error{connectors.ErrIdentityRevoked, connectors.ErrUpstreamDenied, connectors.ErrInvalidCallback,
		connectors.ErrPolicy, ErrPluginFailed}
	f.Fuzz(func(t *testing.T, code uint32, msg, reason string) {
		st := status.New(codes.Code(code), msg)
		err := FromStatus(st, metadata.Pairs(reasonKey, reason))
		if err == nil {
			t.Fatal("an error reply became nil")
		}
		matched := 0
		for _, k := range known {
			if errors.Is(err, k) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("code %d reason %q: %v wraps %d of the known errors, want exactly 1", code, reason, err, matched)
		}
		if errors.Is(err, errNotConfigured) {
			t.Fatalf("NOT_CONFIGURED leaked to the broker: %v", err)
		}
	})
}
