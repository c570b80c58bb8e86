package plugins

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// Errors the host returns (wrapped with the connector id and the call)
// besides the connector errors of package connectors.
var (
	// ErrPluginUnavailable: the plugin process exited or its connection
	// broke during the call. The next call launches it again.
	ErrPluginUnavailable = errors.New("the connector plugin is not running")
	// ErrPluginFailed: the plugin answered with an internal error or an
	// answer that breaks the contract.
	ErrPluginFailed = errors.New("the connector plugin failed")
	// ErrChecksumMismatch: the plugin binary's SHA-256 is not the one in
	// the configuration; it was not started.
	ErrChecksumMismatch = errors.New("the plugin binary's SHA-256 does not match the configuration")
	// ErrClosed: the plugin was closed.
	ErrClosed = errors.New("the connector plugin is closed")
)

// Error reasons sent in the reasonKey trailer.
const (
	reasonUpstreamDenied  = "UPSTREAM_DENIED"
	reasonInvalidCallback = "INVALID_CALLBACK"
	reasonIdentityRevoked = "IDENTITY_REVOKED"
	reasonPolicy          = "POLICY"
	reasonNotConfigured   = "NOT_CONFIGURED"
)

// errNotConfigured is what the SDK answers before Configure succeeded.
var errNotConfigured = errors.New("the connector is not configured")

// connectorErrors maps the connector contract's errors to the wire, in the
// order they are tested.
var connectorErrors = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{connectors.ErrIdentityRevoked, codes.Unauthenticated, reasonIdentityRevoked},
	{connectors.ErrUpstreamDenied, codes.PermissionDenied, reasonUpstreamDenied},
	{connectors.ErrInvalidCallback, codes.InvalidArgument, reasonInvalidCallback},
	{connectors.ErrPolicy, codes.FailedPrecondition, reasonPolicy},
	{errNotConfigured, codes.FailedPrecondition, reasonNotConfigured},
}

// toStatus turns a connector's error into a gRPC status and sets the reason
// trailer on the call's context (plugin side).
func toStatus(ctx context.Context, err error) error {
	for _, m := range connectorErrors {
		if errors.Is(err, m.err) {
			// The reason is an extra; a failure to attach it still leaves
			// the code, which the host understands on its own.
			_ = setReason(ctx, m.reason)
			return status.Error(m.code, err.Error())
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func setReason(ctx context.Context, reason string) error {
	return grpc.SetTrailer(ctx, metadata.Pairs(reasonKey, reason))
}

// fromStatus turns a plugin's error answer into an error that wraps the
// connector contract's error it stands for (host side). A known reason
// decides; otherwise the code does.
func fromStatus(st *status.Status, trailer metadata.MD) error {
	match := func(ok func(code codes.Code, reason string) bool) (error, bool) {
		for _, m := range connectorErrors {
			if ok(m.code, m.reason) {
				return m.err, true
			}
		}
		return nil, false
	}
	reason := ""
	if vs := trailer.Get(reasonKey); len(vs) > 0 {
		reason = vs[0]
	}
	sentinel, ok := match(func(_ codes.Code, r string) bool { return r == reason })
	if !ok {
		// Without a known reason, FailedPrecondition means a policy
		// refusal (it comes first in connectorErrors).
		sentinel, ok = match(func(c codes.Code, _ string) bool { return c == st.Code() })
	}
	if !ok || sentinel == errNotConfigured {
		// NOT_CONFIGURED comes only from a plugin that lost its
		// configuration: the host configures every process it launches.
		return fmt.Errorf("%s (%s): %w", st.Message(), st.Code(), ErrPluginFailed)
	}
	return &wireError{msg: st.Message(), sentinel: sentinel}
}

// wireError is a connector error as a plugin answered it: the status
// message and the contract's error it stands for. A Go plugin's message
// already ends with the sentinel's text (it is the wrapped error's
// Error()), which is then not said a second time.
type wireError struct {
	msg      string
	sentinel error
}

func (e *wireError) Error() string {
	switch {
	case e.msg == "":
		return e.sentinel.Error()
	case strings.Contains(e.msg, e.sentinel.Error()):
		return e.msg
	}
	return e.msg + ": " + e.sentinel.Error()
}

func (e *wireError) Unwrap() error { return e.sentinel }
