package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins"
)

func (e *env) pluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Work with connector plugins",
	}
	cmd.AddCommand(e.pluginCheckCommand())
	return cmd
}

// pluginCheck is what `plugin check` is told.
type pluginCheck struct {
	path, configFile, id, sha256, loginHint, callbackURL string
	autoMTLS                                             bool
	callTimeout, startTimeout                            time.Duration
}

func (e *env) pluginCheckCommand() *cobra.Command {
	var c pluginCheck
	cmd := &cobra.Command{
		Use:   "check --path BIN [--config FILE]",
		Short: "Launch a connector plugin and check it as the broker would",
		Long: `Launch a connector plugin the way the broker does and check each step:
the program can run, the go-plugin handshake (cookie, handshake line on
standard output, auto mTLS), GetInfo, Configure with the configuration in
FILE, a LoginURL, and the gRPC health check. Each step is reported in plain
words, with a hint when it fails; the exit status is 0 only when all pass.

FILE holds the connector's configuration: what goes under the connector's
config: key in the broker's YAML (YAML or JSON). Without --config the
plugin gets an empty object. The plugin's own log lines go to standard
error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.checkPlugin(cmd.Context(), c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.path, "path", "", "the plugin executable (required)")
	f.StringVarP(&c.configFile, "config", "c", "", "file with the connector's configuration (its config: block; YAML or JSON)")
	f.StringVar(&c.id, "id", "check", "the connector id the plugin is told (ConfigureRequest.connector_id)")
	f.StringVar(&c.sha256, "sha256", "", "check the executable's SHA-256 first, as the connector's sha256: setting does")
	f.BoolVar(&c.autoMTLS, "auto-mtls", true, "use go-plugin's automatic mutual TLS (false for plugins that serve plaintext gRPC, as auto_mtls: false does)")
	f.DurationVar(&c.callTimeout, "call-timeout", plugins.DefaultCallTimeout, "bound on each call, Configure included (the connector's call_timeout)")
	f.DurationVar(&c.startTimeout, "start-timeout", plugins.DefaultStartTimeout, "bound on the start up to the handshake line (the connector's start_timeout)")
	f.StringVar(&c.loginHint, "login-hint", "", "login_hint sent with the test LoginURL call")
	f.StringVar(&c.callbackURL, "callback-url", "", "callback URL sent with the test LoginURL call (default http://127.0.0.1:8080/callback/ID)")
	_ = cmd.MarkFlagRequired("path")
	return cmd
}

// errCheckFailed is what `plugin check` returns when a step failed; the
// report on standard output says which and why.
var errCheckFailed = errors.New("plugin check failed")

func (e *env) checkPlugin(ctx context.Context, c pluginCheck) error {
	out := e.stdout
	fmt.Fprintf(out, "Checking connector plugin %s\n", c.path)
	fail := func(step string, err error, hints ...string) error {
		fmt.Fprintf(out, "FAIL  %s: %s\n", step, plainError(err))
		for _, h := range hints {
			fmt.Fprintf(out, "      hint: %s\n", h)
		}
		return fmt.Errorf("%w: %s", errCheckFailed, step)
	}

	config := []byte("{}")
	if c.configFile != "" {
		var err error
		if config, err = readConnectorConfig(c.configFile); err != nil {
			return fail("configuration file", err)
		}
	}
	fmt.Fprintf(out, "ok    configuration: %s\n", describeConfig(c.configFile))

	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := plugins.Launch(ctx, plugins.Config{
		ID: c.id, Path: c.path, SHA256: c.sha256, Config: config,
		CallTimeout: c.callTimeout, StartTimeout: c.startTimeout, DisableAutoMTLS: !c.autoMTLS,
	}, logger)
	if err != nil {
		step, hints := launchFailure(err, c)
		return fail(step, err, hints...)
	}
	defer p.Close()
	info := p.Info()
	fmt.Fprintf(out, "ok    started: handshake, GetInfo (%s)\n", describeInfo(info))
	fmt.Fprintf(out, "ok    Configure accepted the configuration (refresh: %s, reauthenticate: %s)\n", yesNo(info.Refresh), yesNo(info.Reauthenticate))

	callback := c.callbackURL
	if callback == "" {
		callback = "http://127.0.0.1:8080/callback/" + url.PathEscape(c.id)
	}
	const state = "plugin-check-state-0123456789"
	login, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: state, CallbackURL: callback, LoginHint: c.loginHint})
	if err != nil {
		return fail("LoginURL", err, callHints(err, c)...)
	}
	fmt.Fprintf(out, "ok    LoginURL sends the browser to %s\n", login.URL)
	if !strings.Contains(login.URL, state) {
		fmt.Fprintln(out, "warn  the login URL does not carry the state the broker sent: the upstream must send it back on the callback, or every login fails as unverifiable")
	}

	if err := p.Healthy(ctx); err != nil {
		return fail("health check", err, "serve grpc.health.v1.Health/Check answering SERVING for the service \"plugin\"")
	}
	fmt.Fprintln(out, "ok    health check: SERVING")
	fmt.Fprintln(out, "All checks passed.")
	return nil
}

// readConnectorConfig reads a connector's configuration (YAML or JSON)
// as the JSON object Configure gets.
func readConnectorConfig(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s is not YAML or JSON: %w", path, err)
	}
	if v == nil {
		v = map[string]any{}
	}
	if inner, ok := v["config"].(map[string]any); ok && len(v) <= 2 {
		// A file holding `config:` itself (maybe beside an id or path
		// line copied from the broker's YAML).
		v = inner
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

func describeConfig(path string) string {
	if path == "" {
		return "none given, the plugin gets {}"
	}
	return path
}

func describeInfo(i plugins.Info) string {
	if i.Name == "" && i.SDK == "" {
		return "the plugin does not describe itself"
	}
	s := i.Name
	if i.Version != "" {
		s += " " + i.Version
	}
	if i.SDK != "" {
		s += ", sdk " + i.SDK
	}
	return strings.TrimSpace(s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// plainError is err's text without go-plugin's generic advice: a
// handshake line that was not one is said as what the plugin printed.
func plainError(err error) string {
	msg := err.Error()
	const unrecognized = "Unrecognized remote plugin message: "
	if i := strings.Index(msg, unrecognized); i >= 0 {
		printed, _, _ := strings.Cut(msg[i+len(unrecognized):], "\n")
		if printed == "" {
			return msg[:i] + "the program printed no handshake line on standard output"
		}
		return msg[:i] + fmt.Sprintf("the program printed %q on standard output instead of the handshake line", printed)
	}
	return msg
}

// launchFailure names the step of a failed Launch and what to do about it.
func launchFailure(err error, c pluginCheck) (string, []string) {
	msg := err.Error()
	switch {
	case errors.Is(err, plugins.ErrChecksumMismatch):
		return "checksum", []string{"the file is not the build the --sha256 names: rebuild, or update the sum (sha256sum " + c.path + ")"}
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		return "handshake", []string{
			"this does not look like a connector plugin: the first line it prints on standard output must be the handshake line 1|1|tcp|127.0.0.1:PORT|grpc (or unix)",
			"print nothing else to standard output before it; logs go to standard error; flush standard output after it",
		}
	case strings.Contains(msg, "no such file"), strings.Contains(msg, "is not executable (chmod"),
		strings.Contains(msg, "is a directory"), strings.Contains(msg, "not a regular file"):
		return "executable", nil
	case strings.Contains(msg, "refused its configuration"):
		return "Configure", []string{"the plugin refused the configuration in " + describeConfig(c.configFile) + "; its own words are above"}
	case strings.Contains(msg, "in Configure"):
		return "Configure", []string{"Configure must answer within --call-timeout (" + c.callTimeout.String() + "): do slow work (discovery documents, say) with the call's deadline, or later"}
	case strings.Contains(msg, "Incompatible core API version"), strings.Contains(msg, "Incompatible API version"):
		return "handshake", []string{"the handshake line starts with 1|1| (go-plugin's core protocol 1, connector contract 1)"}
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return "handshake", []string{
			"the plugin printed no handshake line within --start-timeout (" + c.startTimeout.String() + ")",
			"flush standard output after the handshake line (Python: print(..., flush=True); C: fflush(stdout))",
			"the plugin must see " + plugins.MagicCookieKey + "=" + plugins.MagicCookieValue + " (the broker sets it) and keep running",
		}
	case strings.Contains(msg, "exited before we could connect"), strings.Contains(msg, "plugin exited"):
		return "handshake", []string{"the program exited before it printed the handshake line: is it a connector plugin? Its last output is above or in the error"}
	case mtlsProblem(msg):
		return "handshake", mtlsHints(c)
	case strings.Contains(msg, "contract version"):
		return "GetInfo", []string{"report protocol_version 1 in GetInfo"}
	case strings.Contains(msg, "GetInfo"):
		return "GetInfo", append([]string{"answer GetInfo (or UNIMPLEMENTED)"}, mtlsHintsIf(msg, c)...)
	}
	return "start", mtlsHintsIf(msg, c)
}

func mtlsProblem(msg string) bool {
	for _, s := range []string{"tls:", "x509", "certificate", "first record does not look like a TLS handshake", "authentication handshake failed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func mtlsHints(c pluginCheck) []string {
	if !c.autoMTLS {
		return []string{"auto mTLS is off, yet the connection failed on TLS: serve plaintext gRPC when PLUGIN_CLIENT_CERT is not set"}
	}
	return []string{
		"the connection failed on TLS: the broker uses go-plugin's auto mTLS (client certificate in PLUGIN_CLIENT_CERT, the plugin's certificate as the handshake line's sixth field)",
		"if the plugin serves plaintext gRPC, run again with --auto-mtls=false and set auto_mtls: false on the connector in the broker's configuration",
	}
}

func mtlsHintsIf(msg string, c pluginCheck) []string {
	if c.autoMTLS && (strings.Contains(msg, "connection") || mtlsProblem(msg)) {
		return mtlsHints(c)
	}
	return nil
}

// callHints says what to do about a failed call.
func callHints(err error, c pluginCheck) []string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return []string{"answer within --call-timeout (" + c.callTimeout.String() + "); pass the call's deadline on to upstream requests"}
	case errors.Is(err, plugins.ErrPluginUnavailable):
		return []string{"the plugin exited or dropped the connection during the call: its last lines on standard error are above"}
	case errors.Is(err, plugins.ErrPluginFailed):
		return []string{"the answer breaks the connector contract (docs/plugins.md)"}
	}
	return nil
}
