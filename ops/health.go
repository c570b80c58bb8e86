package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Check is one readiness condition.
type Check struct {
	// Name appears in the /readyz body ("database", "migrations",
	// "connector okta").
	Name string
	// Run returns nil when the condition holds.
	Run func(context.Context) error
	// Optional marks a check whose failure leaves the broker able to
	// serve most requests (a connector plugin: local login, /token and
	// the JWKS do not need it). A failing optional check makes /readyz
	// answer 200 with status "degraded", naming the check as failing,
	// so one broken connector does not take every replica out of the
	// load balancer; a failing required check answers 503.
	Optional bool
}

// DatabaseCheck is ready when ping (e.g. storage.Store.Ping) succeeds.
func DatabaseCheck(ping func(context.Context) error) Check {
	return Check{Name: "database", Run: ping}
}

// MigrationsCheck is ready when no migration is pending; status is
// storage.Store.MigrationStatus.
func MigrationsCheck(status func(context.Context) (applied, pending int, err error)) Check {
	return Check{Name: "migrations", Run: func(ctx context.Context) error {
		_, pending, err := status(ctx)
		if err != nil {
			return err
		}
		if pending > 0 {
			return fmt.Errorf("%d migrations pending (run bridgekeeper migrate)", pending)
		}
		return nil
	}}
}

// Health serves the liveness and readiness endpoints.
type Health struct {
	checks  []Check
	timeout time.Duration
	log     *slog.Logger
}

// DefaultCheckTimeout bounds all checks of one readiness request.
const DefaultCheckTimeout = 3 * time.Second

// NewHealth returns a Health running checks on every readiness request,
// all at once, within DefaultCheckTimeout. Failures are logged with log
// (nil: discarded).
func NewHealth(log *slog.Logger, checks ...Check) *Health {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Health{checks: checks, timeout: DefaultCheckTimeout, log: log}
}

// Add appends checks (e.g. one per connector plugin, once they are
// launched). Call it before serving.
func (h *Health) Add(checks ...Check) { h.checks = append(h.checks, checks...) }

// healthBody is the JSON answer of both endpoints. Failing checks are
// named; their errors go to the log only (they may name hosts or users).
type healthBody struct {
	Status  string            `json:"status"`
	Checks  map[string]string `json:"checks,omitempty"`
	Failing []string          `json:"failing,omitempty"`
}

// LiveHandler answers 200 as long as the process serves HTTP.
func (h *Health) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusOK, healthBody{Status: "ok"})
	})
}

// ReadyHandler answers 200 when every check passes, 200 with status
// "degraded" when only optional checks fail, else 503; the body names
// every check and the failing ones.
func (h *Health) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs := h.Run(r.Context())
		body := healthBody{Status: "ok", Checks: make(map[string]string, len(h.checks))}
		code := http.StatusOK
		for i, c := range h.checks {
			if errs[i] == nil {
				body.Checks[c.Name] = "ok"
				continue
			}
			body.Checks[c.Name] = "failing"
			body.Failing = append(body.Failing, c.Name)
			h.log.WarnContext(r.Context(), "readiness check failed", "check", c.Name, "optional", c.Optional, "err", errs[i])
			switch {
			case !c.Optional:
				body.Status, code = "unavailable", http.StatusServiceUnavailable
			case code == http.StatusOK:
				body.Status = "degraded"
			}
		}
		writeHealth(w, code, body)
	})
}

// Run runs every check at once and returns their errors, in order.
func (h *Health) Run(ctx context.Context) []error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	errs := make([]error, len(h.checks))
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Go(func() { errs[i] = runCheck(ctx, c) })
	}
	wg.Wait()
	return errs
}

func runCheck(ctx context.Context, c Check) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("check panicked: %v", v)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.New("check timed out")
	}
}

func writeHealth(w http.ResponseWriter, code int, body healthBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
