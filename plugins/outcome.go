package plugins

import (
	"context"
	"errors"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

// Outcomes of a call (Call.Outcome), the outcome label of
// bridgekeeper_plugin_call_duration_seconds.
const (
	// OutcomeOK: the plugin answered and its answer keeps the contract.
	OutcomeOK = "ok"
	// OutcomeTimeout: the call ran out of time (the call timeout or the
	// caller's deadline).
	OutcomeTimeout = "timeout"
	// OutcomeCrash: no plugin process to answer: it exited or its
	// connection broke during the call, or it was not running and could
	// not be launched again (a failed launch, or a launch held back by the
	// crash-loop pause).
	OutcomeCrash = "crash"
	// OutcomeDenied: the connector said no for a reason about the user or
	// the request (connectors.ErrUpstreamDenied, ErrIdentityRevoked,
	// ErrPolicy, ErrInvalidCallback): the plugin works.
	OutcomeDenied = "denied"
	// OutcomeBadIdentity: the plugin answered, but the answer breaks the
	// contract (an identity without a subject or over a limit, a reply
	// over the size limit, a login answer without a URL or over a limit).
	OutcomeBadIdentity = "bad_identity"
	// OutcomeError: any other failure (the plugin returned an internal
	// error, the caller went away, the plugin was closed).
	OutcomeError = "error"
)

// Reasons a launch of a plugin process failed, the reason label of
// bridgekeeper_plugin_launch_failures_total.
const (
	// LaunchPath: the executable is missing or cannot run.
	LaunchPath = "path"
	// LaunchChecksum: the executable's SHA-256 is not the configured one.
	LaunchChecksum = "checksum"
	// LaunchHandshake: the process did not complete go-plugin's handshake
	// or GetInfo (it exited, timed out, or speaks another contract version).
	LaunchHandshake = "handshake"
	// LaunchConfigure: the plugin refused or did not answer Configure.
	LaunchConfigure = "configure"
	// LaunchPaused: no launch was tried because the plugin keeps failing
	// (the crash-loop pause); the call failed at once.
	LaunchPaused = "paused"
)

// launchReasons are every launch failure reason, so that LaunchFailures
// reports each one from the start (a counter must exist at zero for a
// rate to see its first increase).
var launchReasons = []string{LaunchPath, LaunchChecksum, LaunchHandshake, LaunchConfigure, LaunchPaused}

// launchError is an error of start, with the stage that failed. Its text
// is the wrapped error's.
type launchError struct {
	reason string
	err    error
}

func (e *launchError) Error() string { return e.err.Error() }
func (e *launchError) Unwrap() error { return e.err }

func launchFailed(reason string, err error) error {
	return &launchError{reason: reason, err: err}
}

// launchReason is the reason of a failed launch ("" when err is not one).
func launchReason(err error) string {
	var le *launchError
	if errors.As(err, &le) {
		return le.reason
	}
	return ""
}

// callOutcome classifies the error of a call whose plugin process ran;
// launch failures are OutcomeCrash, decided by the caller.
func callOutcome(err error) string {
	var bad *wire.BadAnswer
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &bad):
		return OutcomeBadIdentity
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, ErrPluginUnavailable):
		return OutcomeCrash
	case errors.Is(err, connectors.ErrUpstreamDenied), errors.Is(err, connectors.ErrIdentityRevoked),
		errors.Is(err, connectors.ErrPolicy), errors.Is(err, connectors.ErrInvalidCallback):
		return OutcomeDenied
	}
	return OutcomeError
}
