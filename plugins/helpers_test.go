package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testConnector is the path of the test plugin, built once per test
// process.
func testConnector(t testing.TB) string {
	t.Helper()
	return testenv.Binary(t, "./plugins/internal/testconnector")
}

// hostileConnector is the path of the plugin that breaks the reply limits.
func hostileConnector(t testing.TB) string {
	t.Helper()
	return testenv.Binary(t, "./plugins/internal/hostileconnector")
}

// logRecord is one captured log line with all its attributes flattened.
type logRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]any
}

// logSink captures log records and lets a test wait for one.
type logSink struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) add(r logRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	close(s.changed)
	s.changed = make(chan struct{})
}

// find returns the first record that matches, if any.
func (s *logSink) find(match func(logRecord) bool) (logRecord, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if match(r) {
			return r, true, nil
		}
	}
	return logRecord{}, false, s.changed
}

// wait blocks until a matching record arrives or ctx ends.
func (s *logSink) wait(ctx context.Context, t *testing.T, match func(logRecord) bool) logRecord {
	t.Helper()
	for {
		r, ok, changed := s.find(match)
		if ok {
			return r
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no matching log record: %v", ctx.Err())
		}
	}
}

func (s *logSink) dump(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		t.Logf("log: %s %q %v", r.Level, r.Message, r.Attrs)
	}
}

func messageIs(msg string) func(logRecord) bool {
	return func(r logRecord) bool { return r.Message == msg }
}

type sinkHandler struct {
	sink  *logSink
	attrs []slog.Attr
	level slog.Level
}

func (h *sinkHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Message: r.Message, Attrs: map[string]any{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Any()
		return true
	})
	h.sink.add(rec)
	return nil
}

func (h *sinkHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *sinkHandler) WithGroup(string) slog.Handler { return h }

// launchTest launches the test connector with the given changes to a
// default config and closes it when the test ends. The broker's logger
// records everything, debug included.
func launchTest(t testing.TB, change func(*Config)) (*Plugin, *logSink) {
	t.Helper()
	return launchTestAt(t, slog.LevelDebug, change)
}

// launchTestAt is launchTest with the broker's log level set to level.
func launchTestAt(t testing.TB, level slog.Level, change func(*Config)) (*Plugin, *logSink) {
	t.Helper()
	sink := newLogSink()
	cfg := Config{
		ID:     "test",
		Path:   testConnector(t),
		Config: []byte(`{"issuer":"https://idp.test"}`),
	}
	if change != nil {
		change(&cfg)
	}
	p, err := Launch(context.Background(), cfg, slog.New(&sinkHandler{sink: sink, level: level}))
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, sink
}

// pidOf reads the process id the host logged when it started the plugin
// for the n-th time (counting from 1).
func pidOf(t *testing.T, sink *logSink, n int) int {
	t.Helper()
	seen := 0
	r, ok, _ := sink.find(func(r logRecord) bool {
		if r.Message == "connector plugin started" {
			seen++
		}
		return seen == n
	})
	if !ok {
		sink.dump(t)
		t.Fatalf("no log of start %d", n)
	}
	pid, err := strconv.Atoi(fmt.Sprint(r.Attrs["pid"]))
	if err != nil {
		t.Fatalf("pid %v: %v", r.Attrs["pid"], err)
	}
	return pid
}

// waitExited blocks until the host has noticed that the current plugin
// process exited.
// killFirst kills the plugin's first process (SIGKILL) between calls and
// waits until the host has noticed.
func killFirst(ctx context.Context, t *testing.T, p *Plugin, sink *logSink) {
	t.Helper()
	if err := syscall.Kill(pidOf(t, sink, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExited(ctx, t, p)
}

func waitExited(ctx context.Context, t *testing.T, p *Plugin) {
	t.Helper()
	p.mu.Lock()
	inst := p.cur
	p.mu.Unlock()
	if inst == nil {
		return
	}
	select {
	case <-inst.exited.Done():
	case <-ctx.Done():
		t.Fatalf("the host did not notice the plugin's exit: %v", ctx.Err())
	}
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
