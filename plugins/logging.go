package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

// A plugin logs JSON lines in hclog's form to standard error
// (wire.NewLogHandler); the host reads them back (lineLogger) and logs them
// through its slog.Logger with connector=<id>. Lines that are not JSON are
// logged as text.

// lowestLevel is the lowest level the logger handles, as a name for
// LogLevelEnv.
func lowestLevel(logger *slog.Logger) string {
	for _, l := range []slog.Level{wire.LevelTrace, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if logger.Enabled(context.Background(), l) {
			return wire.LevelName(l)
		}
	}
	return "error"
}

// lineLogger logs what a plugin writes, one line at a time (host side).
// It is an io.Writer; go-plugin writes a line and its newline separately.
type lineLogger struct {
	logger *slog.Logger
	// plain is the level of lines that are not JSON log records.
	plain slog.Level

	mu      sync.Mutex
	partial []byte
	inPanic bool
	// last holds the latest lines, for errors about a plugin that would
	// not start.
	last []string
}

const maxLineBytes = 64 << 10

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.partial = append(l.partial, p...)
			if len(l.partial) > maxLineBytes {
				l.logLine(l.partial)
				l.partial = l.partial[:0]
			}
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
		}
		l.logLine(line)
		l.partial = l.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush logs a last line that had no newline.
func (l *lineLogger) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.logLine(l.partial)
		l.partial = l.partial[:0]
	}
}

// Last returns the latest lines the plugin wrote, oldest first.
func (l *lineLogger) Last() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.last)
}

func (l *lineLogger) logLine(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	text := string(line)
	if len(l.last) == 5 {
		l.last = slices.Delete(l.last, 0, 1)
	}
	l.last = append(l.last, text)

	if level, msg, attrs, ok := parseLogRecord(line); ok {
		l.logger.LogAttrs(context.Background(), level, msg, attrs...)
		return
	}
	level := l.plain
	if strings.HasPrefix(text, "panic: ") || strings.HasPrefix(text, "fatal error: ") {
		l.inPanic = true
	}
	if l.inPanic {
		level = slog.LevelError
	}
	l.logger.LogAttrs(context.Background(), level, text)
}

// hostKeys are the attributes the host puts on every line of a plugin
// (connector=<id>, source=plugin, stream): the plugin's own keys of these
// names are dropped, so a line never names them twice and a plugin cannot
// pass itself off as another connector.
var hostKeys = []string{"connector", "source", "stream"}

// parseLogRecord reads one hclog JSON line. Keys other than @level,
// @message, @timestamp, @module, @caller and hostKeys become attributes,
// sorted by name.
func parseLogRecord(line []byte) (slog.Level, string, []slog.Attr, bool) {
	if len(line) == 0 || line[0] != '{' {
		return 0, "", nil, false
	}
	var fields map[string]any
	if err := json.Unmarshal(line, &fields); err != nil {
		return 0, "", nil, false
	}
	msg, ok := fields["@message"].(string)
	if !ok {
		return 0, "", nil, false
	}
	levelText, _ := fields["@level"].(string)
	level, ok := wire.LevelFromName(levelText)
	if !ok {
		level = slog.LevelInfo
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		switch k {
		case "@message", "@level", "@timestamp", "@module", "@caller":
			continue
		}
		if slices.Contains(hostKeys, k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, fields[k]))
	}
	return level, msg, attrs, true
}

// hcLogger hands go-plugin's own log lines to a slog.Logger (host side).
// go-plugin parses a plugin's standard error itself through the logger it
// gets from Named(<binary name>); that one is switched off, because the
// host reads standard error itself (lineLogger) to parse it without
// go-plugin's panics on unexpected JSON.
type hcLogger struct {
	logger   *slog.Logger
	name     string
	muteName string
	off      bool
	implied  []any
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(logger *slog.Logger, muteName string) *hcLogger {
	return &hcLogger{logger: logger.With("source", "go-plugin"), muteName: muteName}
}

func hclogToSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return wire.LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	if h.off || level == hclog.Off {
		return
	}
	h.logger.Log(context.Background(), hclogToSlog(level), msg, args...)
}

func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) enabled(level hclog.Level) bool {
	return !h.off && h.logger.Enabled(context.Background(), hclogToSlog(level))
}

func (h *hcLogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcLogger) IsError() bool { return h.enabled(hclog.Error) }

func (h *hcLogger) ImpliedArgs() []any { return h.implied }

func (h *hcLogger) With(args ...any) hclog.Logger {
	c := *h
	c.logger = h.logger.With(args...)
	c.implied = append(slices.Clone(h.implied), args...)
	return &c
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	full := name
	if h.name != "" {
		full = h.name + "." + name
	}
	return h.ResetNamed(full)
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	c.off = h.off || (h.muteName != "" && name == h.muteName)
	return &c
}

// SetLevel is ignored: the slog.Logger's handler decides.
func (h *hcLogger) SetLevel(hclog.Level) {}

func (h *hcLogger) GetLevel() hclog.Level {
	if h.off {
		return hclog.Off
	}
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Error
}

func (h *hcLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hcLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineLogger{logger: h.logger, plain: slog.LevelInfo}
}
