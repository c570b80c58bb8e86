package wire

import (
	"io"
	"log/slog"
	"strings"
)

// Plugins log JSON lines to standard error in hclog's JSON form
// ({"@level":"info","@message":"…","@timestamp":"…", more keys}); the host
// reads them back and logs them through its slog.Logger with
// connector=<id>. Lines that are not JSON are logged as text.

const hclogTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// LevelTrace is hclog's trace level in slog terms.
const LevelTrace = slog.LevelDebug - 4

// NewLogHandler writes slog records as hclog JSON lines (the plugin side
// of the log format; the host reads them back).
func NewLogHandler(w io.Writer, level slog.Level) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTimeFormat))
			case slog.LevelKey:
				l, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", LevelName(l))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

// LevelName names a slog level the way hclog does.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}

// LevelFromName reads an hclog level name; ok is false for anything else.
func LevelFromName(s string) (slog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, true
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// LevelFromEnv is the level LogLevelEnv names, info when it names none.
func LevelFromEnv(s string) slog.Level {
	if l, ok := LevelFromName(s); ok {
		return l
	}
	return slog.LevelInfo
}
