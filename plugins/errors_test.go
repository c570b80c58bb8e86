package plugins

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

func TestFromStatus(t *testing.T) {
	withReason := func(r string) metadata.MD { return metadata.Pairs(reasonKey, r) }
	for _, tc := range []struct {
		name    string
		code    codes.Code
		trailer metadata.MD
		want    error
	}{
		{"reason decides", codes.Internal, withReason(reasonUpstreamDenied), connectors.ErrUpstreamDenied},
		{"invalid callback", codes.InvalidArgument, withReason(reasonInvalidCallback), connectors.ErrInvalidCallback},
		{"revoked", codes.Unauthenticated, withReason(reasonIdentityRevoked), connectors.ErrIdentityRevoked},
		{"policy", codes.FailedPrecondition, withReason(reasonPolicy), connectors.ErrPolicy},
		{"code alone: denied", codes.PermissionDenied, nil, connectors.ErrUpstreamDenied},
		{"code alone: invalid", codes.InvalidArgument, nil, connectors.ErrInvalidCallback},
		{"code alone: revoked", codes.Unauthenticated, nil, connectors.ErrIdentityRevoked},
		{"code alone: policy", codes.FailedPrecondition, nil, connectors.ErrPolicy},
		{"unknown reason falls back on the code", codes.PermissionDenied, withReason("SOMETHING_NEW"), connectors.ErrUpstreamDenied},
		{"not configured", codes.FailedPrecondition, withReason(reasonNotConfigured), ErrPluginFailed},
		{"internal", codes.Internal, nil, ErrPluginFailed},
		{"unknown", codes.Unknown, withReason("SOMETHING_NEW"), ErrPluginFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fromStatus(status.New(tc.code, "upstream said no"), tc.trailer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("fromStatus = %v, want it to wrap %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "upstream said no") {
				t.Errorf("message %q lost the plugin's message", err)
			}
		})
	}
}

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{fmt.Errorf("callback: %w", connectors.ErrUpstreamDenied), codes.PermissionDenied},
		{fmt.Errorf("nonce: %w", connectors.ErrInvalidCallback), codes.InvalidArgument},
		{fmt.Errorf("refresh: %w", connectors.ErrIdentityRevoked), codes.Unauthenticated},
		{fmt.Errorf("hd: %w", connectors.ErrPolicy), codes.FailedPrecondition},
		{errNotConfigured, codes.FailedPrecondition},
		{fmt.Errorf("token endpoint: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("boom"), codes.Internal},
	} {
		// Outside a gRPC call the reason cannot be attached; the code is
		// still right.
		st, _ := status.FromError(toStatus(context.Background(), tc.err))
		if st.Code() != tc.code || st.Message() != tc.err.Error() {
			t.Errorf("toStatus(%v) = %s %q, want %s", tc.err, st.Code(), st.Message(), tc.code)
		}
	}
}
