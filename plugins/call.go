package plugins

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

// Call describes one finished call to a plugin, for SetCallObserver.
type Call struct {
	Method string // the connector method: LoginURL, HandleCallback, Refresh
	// Outcome classifies the call: OutcomeOK, OutcomeTimeout,
	// OutcomeCrash, OutcomeDenied, OutcomeBadIdentity or OutcomeError.
	Outcome  string
	Duration time.Duration // as the broker saw it, the round trip included
	// Upstream is the part of Duration the plugin spent waiting for its
	// upstream identity provider, as the plugin reports it (the SDK does
	// for connectors whose HTTP client uses upstreamtime.Transport); zero
	// when it reports nothing.
	Upstream time.Duration
	Err      error
}

// SetCallObserver has fn told about every later call to the plugin (for
// metrics such as bridgekeeper_plugin_call_duration_seconds). A call that
// first has to launch the plugin again is timed from after the launch. fn
// must be cheap and safe for concurrent use; nil removes it.
func (p *Plugin) SetCallObserver(fn func(Call)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observe = fn
}

// invoke runs one call against the current plugin process, launching one
// if needed, under the call deadline, and turns its error into one that
// says what happened: the call's gRPC error is classified (callError), an
// answer that breaks the contract (wire.BadAnswer) is said as such. The
// observer (SetCallObserver) is told the outcome.
func (p *Plugin) invoke(ctx context.Context, method string, call func(context.Context, *instance, ...grpc.CallOption) error) error {
	inst, err := p.instance(ctx)
	if err != nil {
		p.mu.Lock()
		observe, closed := p.observe, p.closed
		p.mu.Unlock()
		if observe != nil {
			outcome := OutcomeCrash // no process, and none could be launched
			if closed || ctx.Err() != nil {
				outcome = OutcomeError
			}
			observe(Call{Method: method, Outcome: outcome, Err: err})
		}
		return err
	}
	// Whose deadline bounds the call: the caller's, or the call timeout.
	deadline, callerBound := ctx.Deadline()
	callerBound = callerBound && deadline.Before(time.Now().Add(p.cfg.CallTimeout))
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	var trailer metadata.MD
	err = call(callCtx, inst, grpc.Trailer(&trailer))
	took := time.Since(start)
	// OK, or an error the plugin itself returned: it is not crash looping.
	answered := !inst.hasExited()
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		answered = false
	}
	if _, isStatus := status.FromError(err); err != nil && !isStatus {
		// Not the call's gRPC error: the plugin's answer breaks the
		// contract (wire.BadAnswer), or the call could not be sent.
		err = fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, err)
	} else if err != nil {
		// The plugin sees the deadline (it travels with the call) a moment
		// before the host does.
		timedOut := callCtx.Err() != nil || took >= p.cfg.CallTimeout*9/10
		err = p.callError(ctx, callerBound, timedOut, inst, method, err, trailer)
	}
	p.mu.Lock()
	if answered {
		p.failures, p.retryAt = 0, time.Time{}
	}
	observe := p.observe
	p.mu.Unlock()
	if observe != nil {
		observe(Call{Method: method, Outcome: callOutcome(err), Duration: took, Upstream: min(wire.UpstreamTime(trailer), took), Err: err})
	}
	return err
}

func (p *Plugin) callError(ctx context.Context, callerBound, timedOut bool, inst *instance, method string, err error, trailer metadata.MD) error {
	st, _ := status.FromError(err)
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, ErrClosed)
	case ctx.Err() != nil:
		return fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, context.Cause(ctx))
	case st.Code() == codes.DeadlineExceeded && callerBound:
		return fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, context.DeadlineExceeded)
	case st.Code() == codes.DeadlineExceeded && timedOut:
		// A plugin that does not even answer its health check is stuck:
		// replace it on the next call.
		if !p.answers(inst) {
			p.discard(inst, "it stopped answering")
		}
		return fmt.Errorf("connector %q: %s: the plugin did not answer within %s: %w", p.cfg.ID, method, p.cfg.CallTimeout, context.DeadlineExceeded)
	case st.Code() == codes.ResourceExhausted && strings.HasPrefix(st.Message(), "grpc: received message larger than max"):
		// gRPC refused the reply before decoding it (MaxReplyBytes); the
		// plugin is fine, the answer is not.
		return fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, &wire.BadAnswer{Err: fmt.Errorf("the plugin's reply is over the limit of %d bytes (%s): %w",
			MaxReplyBytes, st.Message(), ErrPluginFailed)})
	case st.Code() == codes.Unavailable:
		if !inst.hasExited() && p.answers(inst) {
			// The plugin itself answered Unavailable.
			return fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, wire.FromStatus(st, trailer))
		}
		why := "lost the connection to the plugin"
		if inst.waitExit(time.Second) {
			why = "the plugin process exited"
		}
		p.discard(inst, why)
		return fmt.Errorf("connector %q: %s: %s during the call (it is launched again on the next call): %w", p.cfg.ID, method, why, ErrPluginUnavailable)
	}
	return fmt.Errorf("connector %q: %s: %w", p.cfg.ID, method, wire.FromStatus(st, trailer))
}

// answers reports whether the plugin passes a quick health check.
func (p *Plugin) answers(inst *instance) bool {
	ctx, cancel := context.WithTimeout(context.Background(), min(p.cfg.CallTimeout, 2*time.Second))
	defer cancel()
	return inst.healthy(ctx) == nil
}
