package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// Under --log.format json every line of a plugin names its connector once:
// the host tags the lines, a key of the same name from the plugin is
// dropped.
func TestPluginLogLinesNameConnectorOnce(t *testing.T) {
	var out syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := Launch(context.Background(), Config{ID: "test", Path: testConnector(t), Config: []byte(`{"issuer":"https://idp.test"}`)}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Connector().LoginURL(testContext(t), connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	seen := false
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if n := strings.Count(line, `"connector":`); n != 1 {
			t.Errorf("%d connector keys in %s", n, line)
		}
		if strings.Contains(line, "test connector configured") {
			seen = true
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %s", line)
		} else if rec["connector"] != "test" {
			t.Errorf("connector = %v in %s", rec["connector"], line)
		}
	}
	if !seen {
		t.Errorf("the plugin's own log line is missing:\n%s", out.String())
	}
}

// A Configure that does not answer in time is reported as a timeout, not
// as a refused configuration.
func TestConfigureTimesOut(t *testing.T) {
	_, err := Launch(context.Background(), Config{
		ID: "test", Path: testConnector(t), Config: []byte(`{"hang_open":true}`),
		CallTimeout: 500 * time.Millisecond,
	}, nil)
	if err == nil {
		t.Fatal("Launch succeeded")
	}
	if strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %q: want a timeout, not a refusal", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not wrap context.DeadlineExceeded", err)
	}
}

// A configuration the connector refuses is still said as such.
func TestConfigureRefusedSaysSo(t *testing.T) {
	_, err := Launch(context.Background(), Config{ID: "test", Path: testConnector(t), Config: []byte(`{"fail_open":"no client_id"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "refused its configuration: no client_id") {
		t.Fatalf("error %v: want the refusal", err)
	}
}

// Only an absolute http(s) URL may leave LoginURL: anything else would be
// sent to the browser as the redirect.
func TestLoginURLMustBeAWebURL(t *testing.T) {
	p, _ := launchTest(t, nil)
	ctx := testContext(t)
	for _, hint := range []string{"javascript", "relative"} {
		resp, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: hint})
		if !errors.Is(err, ErrPluginFailed) {
			t.Errorf("%s: URL %q, error %v: want ErrPluginFailed", hint, resp.URL, err)
			continue
		}
		if !strings.Contains(err.Error(), "not an absolute http(s) URL") {
			t.Errorf("%s: error %q does not say why", hint, err)
		}
	}
}

// A plugin that dies leaves no socket behind in TMPDIR.
func TestNoStaleSocketAfterCrash(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p, _ := launchTest(t, nil)
	ctx := testContext(t)
	// The plugin exits mid-call, is launched again on the next call, and
	// is killed outright before Close.
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: "exit"}); !errors.Is(err, ErrPluginUnavailable) {
		t.Fatalf("LoginURL: %v", err)
	}
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL after the crash: %v", err)
	}
	p.mu.Lock()
	proc := p.cur.proc
	p.mu.Unlock()
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	waitExited(ctx, t, p)
	p.Close()
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left in TMPDIR: %s", e.Name())
	}
}
