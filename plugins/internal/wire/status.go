package wire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// ErrPluginFailed: the plugin answered with an internal error or an answer
// that breaks the contract (package plugins exports it).
var ErrPluginFailed = errors.New("the connector plugin failed")

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
// and user message trailers on the call's context (plugin side).
func toStatus(ctx context.Context, err error) error {
	userMessage := connectors.UserMessage(err)
	for _, m := range connectorErrors {
		if errors.Is(err, m.err) {
			// The trailers are extras; a failure to attach them still
			// leaves the code, which the host understands on its own.
			_ = setTrailer(ctx, m.reason, userMessage)
			return status.Error(m.code, err.Error())
		}
	}
	if userMessage != "" {
		_ = setTrailer(ctx, "", userMessage)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func setTrailer(ctx context.Context, reason, userMessage string) error {
	md := metadata.MD{}
	if reason != "" {
		md.Set(reasonKey, reason)
	}
	if userMessage != "" {
		detail, err := proto.Marshal(&connectorpb.ErrorDetail{Reason: reason, UserMessage: userMessage})
		if err != nil {
			return err
		}
		md.Set(errorDetailKey, string(detail))
	}
	return grpc.SetTrailer(ctx, md)
}

// FromStatus turns a plugin's error answer into an error that wraps the
// connector contract's error it stands for (host side). A known reason
// decides; otherwise the code does.
func FromStatus(st *status.Status, trailer metadata.MD) error {
	match := func(ok func(code codes.Code, reason string) bool) (error, bool) {
		for _, m := range connectorErrors {
			if ok(m.code, m.reason) {
				return m.err, true
			}
		}
		return nil, false
	}
	detail := errorDetail(trailer)
	reason := detail.GetReason()
	if vs := trailer.Get(reasonKey); len(vs) > 0 {
		reason = vs[0]
	}
	sentinel, ok := match(func(_ codes.Code, r string) bool { return r == reason })
	if !ok {
		// Without a known reason, FailedPrecondition means a policy
		// refusal (it comes first in connectorErrors).
		sentinel, ok = match(func(c codes.Code, _ string) bool { return c == st.Code() })
	}
	var err error
	if !ok || sentinel == errNotConfigured {
		// NOT_CONFIGURED comes only from a plugin that lost its
		// configuration: the host configures every process it launches.
		err = fmt.Errorf("%s (%s): %w", st.Message(), st.Code(), ErrPluginFailed)
	} else {
		err = &wireError{msg: st.Message(), sentinel: sentinel}
	}
	if msg := detail.GetUserMessage(); msg != "" {
		if why := checkUserMessage(msg); why != "" {
			return fmt.Errorf("%w (its user message was dropped: %s)", err, why)
		}
		return &connectors.UserError{Err: err, Message: msg}
	}
	return err
}

// errorDetail reads the ErrorDetail trailer of an error answer; nil (whose
// getters answer "") when there is none or it cannot be read.
func errorDetail(trailer metadata.MD) *connectorpb.ErrorDetail {
	vs := trailer.Get(errorDetailKey)
	if len(vs) == 0 {
		return nil
	}
	var d connectorpb.ErrorDetail
	if err := proto.Unmarshal([]byte(vs[0]), &d); err != nil {
		return nil
	}
	return &d
}

// checkUserMessage says why a plugin's user message may not be shown, or
// "" when it may: plain text, one line, at most MaxUserMessageLength
// characters.
func checkUserMessage(msg string) string {
	switch {
	case !utf8.ValidString(msg):
		return "not UTF-8"
	case utf8.RuneCountInString(msg) > connectors.MaxUserMessageLength:
		return fmt.Sprintf("longer than %d characters", connectors.MaxUserMessageLength)
	case strings.IndexFunc(msg, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)
	}) >= 0:
		return "it holds control characters"
	}
	return ""
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
