package plugins

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

func TestLineLogger(t *testing.T) {
	sink := newLogSink()
	l := &lineLogger{logger: slog.New(&sinkHandler{sink: sink, level: wire.LevelTrace}), plain: slog.LevelInfo}
	// go-plugin writes a line and its newline separately; others write
	// several lines at once, or a line in pieces.
	writes := []string{
		`{"@level":"warn","@message":"upstream slow","@timestamp":"2026-01-01T00:00:00.000000Z","@module":"x","elapsed_ms":812}`, "\n",
		"plain text\n{\"@level\":\"debug\",\"@mess", "age\":\"in pieces\"}\n",
		`{"@message":5}` + "\n", // not an hclog record: logged as text
		`{"@level":"nonsense","@message":"odd level"}` + "\n",
		"\n",
		"panic: told to panic\n", "goroutine 1 [running]:\n",
		"no newline at the end",
	}
	for _, w := range writes {
		if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	l.Flush()
	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelWarn, "upstream slow"},
		{slog.LevelInfo, "plain text"},
		{slog.LevelDebug, "in pieces"},
		{slog.LevelInfo, `{"@message":5}`},
		{slog.LevelInfo, "odd level"},
		{slog.LevelError, "panic: told to panic"},
		{slog.LevelError, "goroutine 1 [running]:"},
		{slog.LevelError, "no newline at the end"},
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.records) != len(want) {
		for _, r := range sink.records {
			t.Logf("%s %q", r.Level, r.Message)
		}
		t.Fatalf("%d records, want %d", len(sink.records), len(want))
	}
	for i, w := range want {
		if r := sink.records[i]; r.Level != w.level || r.Message != w.msg {
			t.Errorf("record %d = %s %q, want %s %q", i, r.Level, r.Message, w.level, w.msg)
		}
	}
	first := sink.records[0].Attrs
	if first["elapsed_ms"] != 812.0 || first["@module"] != nil || first["@timestamp"] != nil {
		t.Errorf("attributes of the JSON record = %v", first)
	}
	if last := l.Last(); len(last) != 5 || last[4] != "no newline at the end" {
		t.Errorf("Last() = %q", last)
	}
}

func TestLineLoggerLongLine(t *testing.T) {
	sink := newLogSink()
	l := &lineLogger{logger: slog.New(&sinkHandler{sink: sink}), plain: slog.LevelInfo}
	long := strings.Repeat("x", maxLineBytes+10)
	_, _ = l.Write([]byte(long))
	_, _ = l.Write([]byte("\n"))
	sink.mu.Lock()
	defer sink.mu.Unlock()
	total := 0
	for _, r := range sink.records {
		total += len(r.Message)
	}
	if total != len(long) {
		t.Errorf("logged %d bytes of a %d-byte line", total, len(long))
	}
}

// The SDK's log lines are what the host parses.
func TestPluginLogHandlerRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	plugin := slog.New(wire.NewLogHandler(&buf, slog.LevelDebug))
	plugin.Debug("token exchanged", "upstream", "okta", "attempt", 2)
	plugin.Log(context.Background(), wire.LevelTrace, "dropped below the level")

	sink := newLogSink()
	l := &lineLogger{logger: slog.New(&sinkHandler{sink: sink, level: wire.LevelTrace}), plain: slog.LevelInfo}
	_, _ = l.Write(buf.Bytes())
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.records) != 1 {
		t.Fatalf("%d records from %q", len(sink.records), buf.String())
	}
	r := sink.records[0]
	if r.Level != slog.LevelDebug || r.Message != "token exchanged" || r.Attrs["upstream"] != "okta" || r.Attrs["attempt"] != 2.0 {
		t.Errorf("record = %+v", r)
	}
	if !strings.Contains(buf.String(), `"@timestamp":"`) || !strings.Contains(buf.String(), `"@level":"debug"`) {
		t.Errorf("no hclog timestamp in %q", buf.String())
	}
}

func TestHCLogger(t *testing.T) {
	sink := newLogSink()
	h := newHCLogger(slog.New(&sinkHandler{sink: sink, level: slog.LevelInfo}), "connector-acme")
	h.Debug("below the level")
	h.With("pid", 42).Warn("plugin failed to exit gracefully")
	h.Named("connector-acme").Error("parsed by go-plugin: muted")
	h.Named("stdio").Error("stdio broke", "err", "EOF")
	if h.GetLevel() != hclog.Info || !h.IsWarn() || h.IsDebug() || h.Named("connector-acme").GetLevel() != hclog.Off {
		t.Errorf("levels: %v %v %v", h.GetLevel(), h.IsDebug(), h.Named("connector-acme").GetLevel())
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.records) != 2 {
		t.Fatalf("records = %+v", sink.records)
	}
	if r := sink.records[0]; r.Level != slog.LevelWarn || r.Attrs["pid"] != int64(42) || r.Attrs["source"] != "go-plugin" {
		t.Errorf("record = %+v", r)
	}
	if r := sink.records[1]; r.Message != "stdio broke" || r.Attrs["err"] != "EOF" {
		t.Errorf("record = %+v", r)
	}
}
