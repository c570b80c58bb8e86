package wire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
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
			err := FromStatus(status.New(tc.code, "upstream said no"), tc.trailer)
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

// An ErrorDetail trailer's user message reaches the host as the error's
// connectors.UserMessage; one that breaks the rules is dropped (and the
// log says why); the reason in the detail counts when no reason trailer
// is sent.
func TestFromStatusUserMessage(t *testing.T) {
	detail := func(reason, msg string) metadata.MD {
		b, err := proto.Marshal(&connectorpb.ErrorDetail{Reason: reason, UserMessage: msg})
		if err != nil {
			t.Fatal(err)
		}
		return metadata.Pairs(errorDetailKey, string(b))
	}
	for _, tc := range []struct {
		name    string
		code    codes.Code
		trailer metadata.MD
		want    error
		msg     string
	}{
		{"shown", codes.FailedPrecondition, detail("", "Use your work account."), connectors.ErrPolicy, "Use your work account."},
		{"reason from the detail", codes.Internal, detail(reasonUpstreamDenied, "Try again."), connectors.ErrUpstreamDenied, "Try again."},
		{"internal error with a message", codes.Internal, detail("", "Try later."), ErrPluginFailed, "Try later."},
		{"two lines dropped", codes.FailedPrecondition, detail("", "one\ntwo"), connectors.ErrPolicy, ""},
		{"bidi control dropped", codes.FailedPrecondition, detail("", "abc\u202edef"), connectors.ErrPolicy, ""},
		{"too long dropped", codes.FailedPrecondition, detail("", strings.Repeat("é", connectors.MaxUserMessageLength+1)), connectors.ErrPolicy, ""},
		{"not UTF-8 dropped", codes.FailedPrecondition, metadata.Pairs(errorDetailKey, "\x12\x01\xff"), connectors.ErrPolicy, ""},
		{"at the limit shown", codes.FailedPrecondition, detail("", strings.Repeat("é", connectors.MaxUserMessageLength)), connectors.ErrPolicy, strings.Repeat("é", connectors.MaxUserMessageLength)},
		{"garbage detail ignored", codes.FailedPrecondition, metadata.Pairs(errorDetailKey, "\xff\xff\xff"), connectors.ErrPolicy, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := FromStatus(status.New(tc.code, "access_token=secret"), tc.trailer)
			if !errors.Is(err, tc.want) {
				t.Fatalf("fromStatus = %v, want it to wrap %v", err, tc.want)
			}
			if got := connectors.UserMessage(err); got != tc.msg {
				t.Errorf("UserMessage = %q, want %q", got, tc.msg)
			}
		})
	}
}
