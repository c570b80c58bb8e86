package plugins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// Defaults for the zero values of Config.
const (
	DefaultCallTimeout  = 15 * time.Second
	DefaultStartTimeout = 10 * time.Second
	DefaultCrashBackoff = time.Second
)

// A plugin that fails this many times in a row (crashes, failed launches)
// with no call answered in between is launched again only after a pause,
// CrashBackoff doubled for each further failure up to maxCrashBackoff, so
// a crash-looping plugin does not cost a process launch per login.
const (
	crashLoopAfter  = 3
	maxCrashBackoff = 30 * time.Second
)

// Config says how to run one connector plugin.
type Config struct {
	// ID is the broker's id of the connector ("okta"), used in logs and
	// errors.
	ID string
	// Path is the plugin executable.
	Path string
	// Args are passed to the plugin after its name.
	Args []string
	// Env holds extra KEY=VALUE entries for the plugin. A plugin does not
	// inherit the broker's environment (it holds the broker's secrets), only
	// PATH, HOME, TMPDIR, TZ, LANG, LC_ALL, SSL_CERT_FILE and SSL_CERT_DIR.
	Env []string
	// SHA256 is the expected hex SHA-256 of the executable. When set, the
	// file is checked before every launch and refused on a mismatch; on
	// Linux the host then executes the very file it hashed (through
	// /proc/self/fd), so swapping the file after the check changes nothing.
	SHA256 string
	// Config is the connector's configuration as JSON, sent in Configure.
	Config []byte
	// CallTimeout bounds every call to the plugin (DefaultCallTimeout when
	// zero). A caller's shorter deadline wins.
	CallTimeout time.Duration
	// StartTimeout bounds the plugin's start, up to its handshake line
	// (DefaultStartTimeout when zero).
	StartTimeout time.Duration
	// CrashBackoff is the first pause before launching a plugin again once
	// it has failed 3 times in a row (DefaultCrashBackoff when zero); calls
	// in the pause fail at once with ErrPluginUnavailable.
	CrashBackoff time.Duration
	// DisableAutoMTLS turns off go-plugin's automatic mutual TLS between
	// broker and plugin. Plugins built with Serve support it; plugins in
	// other languages usually do not and need this set.
	DisableAutoMTLS bool

	// afterCheck, when set, runs between the checksum check and the
	// launch (tests swap the file there).
	afterCheck func()
}

// Info describes a running plugin.
type Info struct {
	// Name, Version and SDK are what the plugin says about itself.
	Name    string
	Version string
	SDK     string
	// Refresh says whether the connector can refresh identities.
	Refresh bool
	// Reauthenticate says whether the connector honours
	// LoginRequest.ForceLogin and MaxAge (connectors.ReauthConnector).
	Reauthenticate bool
}

// Plugin supervises the process of one connector plugin: it launches it
// (checking its checksum first), checks its health, and launches it again
// after a crash, pausing when it keeps failing. Connector is the connector
// the plugin serves. When the process dies, the call in flight fails with
// an error wrapping ErrPluginUnavailable and the next call launches the
// plugin again.
type Plugin struct {
	cfg    Config
	logger *slog.Logger
	// conn is the connector the plugin serves, its capabilities as the
	// first launch declared them (Connector).
	conn connectors.Connector

	mu  sync.Mutex
	cur *instance
	// info is what the latest launched process said about itself.
	info     Info
	restarts int
	closed   bool
	// failures counts crashes and failed launches since the last call the
	// plugin answered; past crashLoopAfter, no launch before retryAt.
	failures int
	retryAt  time.Time
	// launchFailures counts failed launches after the first, by reason
	// (LaunchFailures).
	launchFailures map[string]int
	// observe, when set, is told about every call (SetCallObserver).
	observe func(Call)
	// stopping counts discarded processes still being stopped.
	stopping sync.WaitGroup
}

// instance is one running plugin process.
type instance struct {
	client *goplugin.Client
	conn   *grpc.ClientConn
	rpc    connectorpb.ConnectorClient
	// calls is the connector's side of the three calls.
	calls wire.Client
	// exited is done once the process has exited.
	exited context.Context
	info   Info
	stderr *lineLogger
	// socketDir holds the plugin's go-plugin socket; removed when the
	// process is stopped, however it ended.
	socketDir string
	// proc is a handle on the process (a pidfd on Linux, safe against pid
	// reuse) for killing it when go-plugin cannot.
	proc *os.Process
}

// Launch starts the plugin, checks its handshake and configures it. The
// logger receives the plugin's log lines with the attribute connector=ID.
// Close stops the process.
func Launch(ctx context.Context, cfg Config, logger *slog.Logger) (*Plugin, error) {
	if cfg.ID == "" {
		return nil, errors.New("plugin config: no connector id")
	}
	if cfg.Path == "" {
		return nil, fmt.Errorf("connector %q: plugin config: no path", cfg.ID)
	}
	if cfg.SHA256 != "" {
		sum, err := hex.DecodeString(cfg.SHA256)
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("connector %q: plugin config: sha256 must be 64 hex digits, got %q", cfg.ID, cfg.SHA256)
		}
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.CrashBackoff <= 0 {
		cfg.CrashBackoff = DefaultCrashBackoff
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Plugin{cfg: cfg, logger: logger.With("connector", cfg.ID), launchFailures: make(map[string]int, len(launchReasons))}
	for _, r := range launchReasons {
		p.launchFailures[r] = 0
	}
	inst, err := p.start(ctx)
	if err != nil {
		return nil, err
	}
	p.cur, p.info = inst, inst.info
	p.conn = newConnector(p, inst.info)
	return p, nil
}

// Connector is the connector the plugin serves. It implements
// connectors.RefreshConnector only when the plugin declared the refresh
// capability at its first launch (the broker then re-checks its users on
// every refresh grant), and connectors.ReauthConnector (whose answer
// follows the latest launch).
func (p *Plugin) Connector() connectors.Connector { return p.conn }

// ID is the connector's id.
func (p *Plugin) ID() string { return p.cfg.ID }

// Info describes the plugin as it said at its latest launch.
func (p *Plugin) Info() Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Restarts is how often the plugin was launched again after a crash.
func (p *Plugin) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Up reports whether a plugin process is running and the host is not
// holding back launches (the crash-loop pause): 0 or 1 in
// bridgekeeper_plugin_up. A process that died is noticed here once go-plugin
// sees its exit; it is launched again by the next call or health check.
func (p *Plugin) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil && !p.cur.hasExited() && !time.Now().Before(p.retryAt)
}

// LaunchFailures counts the launches after the first that failed, by
// reason (LaunchPath, LaunchChecksum, LaunchHandshake, LaunchConfigure,
// LaunchPaused); every reason is present, at zero until it happens.
func (p *Plugin) LaunchFailures() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.launchFailures))
	for r, n := range p.launchFailures {
		out[r] = n
	}
	return out
}

// Close stops the plugin process (and any replaced one still stopping).
// Calls after Close fail with ErrClosed.
func (p *Plugin) Close() error {
	p.mu.Lock()
	inst := p.cur
	p.cur = nil
	p.closed = true
	p.mu.Unlock()
	if inst != nil {
		inst.stop()
	}
	p.stopping.Wait()
	return nil
}

// Healthy asks the plugin's gRPC health service whether it serves,
// launching the plugin again first if its process has exited.
func (p *Plugin) Healthy(ctx context.Context) error {
	inst, err := p.instance(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	if err := inst.healthy(ctx); err != nil {
		return fmt.Errorf("connector %q: health check: %w", p.cfg.ID, err)
	}
	return nil
}

// instance returns the running plugin process, launching a new one when the
// last one has exited or was discarded.
func (p *Plugin) instance(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("connector %q: %w", p.cfg.ID, ErrClosed)
	}
	if p.cur != nil {
		if !p.cur.hasExited() {
			return p.cur, nil
		}
		p.logger.Warn("connector plugin exited; launching it again")
		p.cur.stop()
		p.cur = nil
		p.failedLocked()
	}
	if wait := time.Until(p.retryAt); wait > 0 {
		p.launchFailures[LaunchPaused]++
		return nil, fmt.Errorf("connector %q: the plugin failed %d times in a row; it is launched again in %s: %w",
			p.cfg.ID, p.failures, wait.Round(time.Millisecond), ErrPluginUnavailable)
	}
	inst, err := p.start(ctx)
	if err != nil {
		if r := launchReason(err); r != "" {
			p.launchFailures[r]++
		}
		p.failedLocked()
		return nil, err
	}
	if _, refreshes := p.conn.(connectors.RefreshConnector); inst.info.Refresh != refreshes {
		p.logger.Warn("connector plugin relaunched with another refresh capability than at its first launch; the broker keeps the first until it restarts",
			"refresh", inst.info.Refresh)
	}
	p.cur, p.info = inst, inst.info
	p.restarts++
	return inst, nil
}

// failedLocked counts a crash or failed launch and, in a crash loop, sets
// when the next launch may happen. p.mu is held.
func (p *Plugin) failedLocked() {
	p.failures++
	if p.failures < crashLoopAfter {
		return
	}
	backoff := p.cfg.CrashBackoff << min(p.failures-crashLoopAfter, 10)
	backoff = min(backoff, maxCrashBackoff)
	p.retryAt = time.Now().Add(backoff)
	p.logger.Error("connector plugin keeps failing; pausing before the next launch", "failures", p.failures, "pause", backoff)
}

// discard stops a broken instance; the next call launches a new one.
func (p *Plugin) discard(inst *instance, why string) {
	p.logger.Error("connector plugin failed; it is launched again on the next call", "reason", why)
	p.mu.Lock()
	if p.cur == inst {
		p.cur = nil
		p.failedLocked()
	}
	if p.closed {
		p.mu.Unlock()
		inst.stop()
		return
	}
	// The caller has its answer; stopping a wedged process can take
	// seconds. Close waits for it (Add happens under the lock, before
	// Close can set closed and Wait).
	p.stopping.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.stopping.Done()
		inst.stop()
	}()
}

// start launches a plugin process and configures it.
func (p *Plugin) start(ctx context.Context) (*instance, error) {
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = p.env()
	// A path that cannot run is said as such here: go-plugin would report
	// it after a misleading "failed to exit gracefully" about a process
	// that never started.
	if err := runnable(cmd); err != nil {
		return nil, launchFailed(LaunchPath, fmt.Errorf("connector %q: plugin %s: %w", p.cfg.ID, p.cfg.Path, err))
	}
	// The checked file stays open until the process has started: on Linux
	// the kernel executes it, not the path.
	var checked *os.File
	if p.cfg.SHA256 != "" {
		var err error
		if checked, err = p.checkBinary(cmd); err != nil {
			reason := LaunchPath
			if errors.Is(err, ErrChecksumMismatch) {
				reason = LaunchChecksum
			}
			return nil, launchFailed(reason, err)
		}
	}
	// The plugin's socket goes in a directory of its own (0700), which
	// the host removes once the process is gone: go-plugin removes the
	// socket only when the plugin shuts down cleanly.
	socketDir, err := os.MkdirTemp("", "bridgekeeper-plugin-")
	if err != nil {
		if checked != nil {
			checked.Close()
		}
		return nil, fmt.Errorf("connector %q: starting plugin %s: socket directory: %w", p.cfg.ID, p.cfg.Path, err)
	}
	cmd.Env = append(cmd.Env, goplugin.EnvUnixSocketDir+"="+socketDir)
	stderr := &lineLogger{logger: p.logger.With("source", "plugin"), plain: slog.LevelInfo}
	ccfg := &goplugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          goplugin.PluginSet{wire.PluginName: &wire.GRPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           newHCLogger(p.logger, filepath.Base(p.cfg.Path)),
		Stderr:           stderr,
		SyncStdout:       &lineLogger{logger: p.logger.With("source", "plugin", "stream", "stdout"), plain: slog.LevelInfo},
		SyncStderr:       &lineLogger{logger: p.logger.With("source", "plugin", "stream", "stderr"), plain: slog.LevelInfo},
		StartTimeout:     p.cfg.StartTimeout,
		AutoMTLS:         !p.cfg.DisableAutoMTLS,
		SkipHostEnv:      true,
		// A reply over MaxReplyBytes is refused before it is decoded
		// (go-plugin's own default is 2 GiB).
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxReplyBytes)),
			grpc.WithMaxHeaderListSize(MaxReplyHeaderBytes),
		},
	}
	client := goplugin.NewClient(ccfg)
	fail := func(err error) (*instance, error) {
		client.Kill()
		os.RemoveAll(socketDir)
		stderr.Flush()
		if last := stderr.Last(); len(last) > 0 {
			err = fmt.Errorf("%w; its last output: %s", err, strings.Join(last, " | "))
		}
		if !p.cfg.DisableAutoMTLS && strings.Contains(err.Error(), "authentication handshake failed") {
			err = fmt.Errorf("%w (the plugin does not speak go-plugin's auto mTLS: a plugin that serves plaintext gRPC needs auto_mtls: false on its connector)", err)
		}
		return nil, launchFailed(LaunchHandshake, fmt.Errorf("connector %q: starting plugin %s: %w", p.cfg.ID, p.cfg.Path, err))
	}
	rpcClient, err := client.Client()
	if checked != nil {
		checked.Close()
	}
	if err != nil {
		return fail(err)
	}
	raw, err := rpcClient.Dispense(wire.PluginName)
	if err != nil {
		return fail(err)
	}
	d, ok := raw.(*wire.Dispensed)
	if !ok {
		return fail(fmt.Errorf("unexpected plugin client %T", raw))
	}
	inst := &instance{
		client:    client,
		conn:      d.Conn,
		rpc:       connectorpb.NewConnectorClient(d.Conn),
		exited:    d.Exited,
		stderr:    stderr,
		socketDir: socketDir,
	}
	inst.calls = wire.Client{RPC: inst.rpc, Logger: p.logger}
	if pid, err := strconv.Atoi(client.ID()); err == nil {
		inst.proc, _ = os.FindProcess(pid)
	}

	callCtx, cancel := context.WithTimeout(ctx, p.cfg.CallTimeout)
	defer cancel()
	info, err := inst.rpc.GetInfo(callCtx, &connectorpb.GetInfoRequest{})
	switch {
	case status.Code(err) == codes.Unimplemented:
		// GetInfo is metadata; a plugin without it can still serve.
	case err != nil:
		return fail(fmt.Errorf("GetInfo: %w", err))
	case info.GetProtocolVersion() != 0 && info.GetProtocolVersion() != wire.ProtocolVersion:
		return fail(fmt.Errorf("the plugin speaks connector contract version %d, this broker speaks %d", info.GetProtocolVersion(), ProtocolVersion))
	default:
		inst.info = Info{Name: info.GetName(), Version: info.GetVersion(), SDK: info.GetSdk()}
	}
	var trailer metadata.MD
	resp, err := inst.rpc.Configure(callCtx, &connectorpb.ConfigureRequest{ConfigJson: p.cfg.Config, ConnectorId: p.cfg.ID}, grpc.Trailer(&trailer))
	if err != nil {
		inst.stop()
		return nil, launchFailed(LaunchConfigure, p.configureError(ctx, callCtx, err))
	}
	inst.info.Refresh = resp.GetCapabilities().GetRefresh()
	inst.info.Reauthenticate = resp.GetCapabilities().GetReauthenticate()
	p.logger.Info("connector plugin started", "path", p.cfg.Path, "pid", client.ID(),
		"plugin", inst.info.Name, "version", inst.info.Version, "sdk", inst.info.SDK, "refresh", inst.info.Refresh)
	return inst, nil
}

// configureError says why Configure failed: the plugin refused the
// configuration, or did not answer in time (its open blocked, say on an
// unreachable upstream's discovery document).
func (p *Plugin) configureError(ctx, callCtx context.Context, err error) error {
	st, _ := status.FromError(err)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("connector %q: the plugin %s: Configure: %w", p.cfg.ID, p.cfg.Path, context.Cause(ctx))
	case callCtx.Err() != nil || st.Code() == codes.DeadlineExceeded:
		return fmt.Errorf("connector %q: the plugin %s timed out in Configure: no answer within %s (the call timeout; is its upstream reachable?): %w",
			p.cfg.ID, p.cfg.Path, p.cfg.CallTimeout, context.DeadlineExceeded)
	case st.Code() == codes.Unavailable:
		return fmt.Errorf("connector %q: the plugin %s exited or dropped the connection during Configure: %w", p.cfg.ID, p.cfg.Path, ErrPluginUnavailable)
	}
	return fmt.Errorf("connector %q: the plugin %s refused its configuration: %s", p.cfg.ID, p.cfg.Path, st.Message())
}

// runnable says why cmd's program cannot be executed, if it plainly
// cannot: not found, not a regular file, not executable.
func runnable(cmd *exec.Cmd) error {
	if cmd.Err != nil { // a bare name not found in $PATH, or found only in "."
		return cmd.Err
	}
	fi, err := os.Stat(cmd.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file (check the connector's path)")
	case err != nil:
		return err
	case fi.IsDir():
		return errors.New("is a directory, not the plugin's executable")
	case !fi.Mode().IsRegular():
		return fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("is not executable (chmod +x %s)", cmd.Path)
	}
	return nil
}

// env is the plugin's environment: a few harmless variables of the
// broker's, the log level, and the configured extras.
func (p *Plugin) env() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, wire.LogLevelEnv+"="+lowestLevel(p.logger))
	return append(env, p.cfg.Env...)
}

func (i *instance) hasExited() bool {
	return i.exited.Err() != nil
}

// waitExit waits up to d for the process to exit and reports whether it
// has. A killed process breaks its connection a moment before go-plugin
// notices the exit.
func (i *instance) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-i.exited.Done():
		return true
	case <-t.C:
		return false
	}
}

func (i *instance) healthy(ctx context.Context) error {
	resp, err := healthpb.NewHealthClient(i.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: wire.HealthService})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("the plugin reports %s", resp.GetStatus())
	}
	return nil
}

// stop ends the process: go-plugin asks it to shut down and kills it after
// two seconds. A process that does not even take the request (stopped,
// wedged) would block that forever: it is killed here after stopGrace.
func (i *instance) stop() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		i.client.Kill()
	}()
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		if i.proc != nil {
			_ = i.proc.Kill()
		}
		<-done
	}
	if i.socketDir != "" {
		os.RemoveAll(i.socketDir)
	}
	i.stderr.Flush()
}

// stopGrace bounds go-plugin's own shutdown (a request, then two seconds'
// wait) before the host kills the process itself.
const stopGrace = 3 * time.Second

// checkBinary opens the plugin's executable, checks that it is a regular
// file with the configured SHA-256 and points cmd at that open file
// (execChecked), so what runs is what was hashed, whatever happens to the
// path meanwhile. The caller closes the file once the process has started.
func (p *Plugin) checkBinary(cmd *exec.Cmd) (*os.File, error) {
	if cmd.Err != nil {
		return nil, fmt.Errorf("connector %q: starting plugin %s: %w", p.cfg.ID, p.cfg.Path, cmd.Err)
	}
	// Non-blocking, so a named pipe in its place cannot stall the launch.
	f, err := os.OpenFile(cmd.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("connector %q: starting plugin %s: %w", p.cfg.ID, p.cfg.Path, err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("connector %q: starting plugin %s: %w", p.cfg.ID, p.cfg.Path, err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("connector %q: refusing to start plugin %s: it is not a regular file (%s)", p.cfg.ID, p.cfg.Path, fi.Mode().Type()))
	}
	h := sha256.New()
	var head [2]byte
	n, _ := io.ReadFull(f, head[:])
	h.Write(head[:n])
	if _, err := io.Copy(h, f); err != nil {
		return fail(fmt.Errorf("connector %q: starting plugin %s: hashing it: %w", p.cfg.ID, p.cfg.Path, err))
	}
	want, _ := hex.DecodeString(p.cfg.SHA256) // checked in Launch
	if sum := h.Sum(nil); !bytes.Equal(sum, want) {
		return fail(fmt.Errorf("connector %q: refusing to start plugin %s: its SHA-256 is %s, the configuration expects %s: %w",
			p.cfg.ID, p.cfg.Path, hex.EncodeToString(sum), strings.ToLower(p.cfg.SHA256), ErrChecksumMismatch))
	}
	if p.cfg.afterCheck != nil {
		p.cfg.afterCheck()
	}
	if string(head[:n]) == "#!" {
		// The kernel cannot run a script from a close-on-exec descriptor,
		// and the interpreter would read it again by its path anyway.
		p.logger.Warn("connector plugin is a script: its interpreter reads it again by its path, so the sha256 check does not rule out a swap after it; keep the script and its directory writable only by the broker's owner",
			"path", p.cfg.Path)
		return f, nil
	}
	f, err = execChecked(cmd, f)
	if err != nil {
		return fail(fmt.Errorf("connector %q: starting plugin %s: %w", p.cfg.ID, p.cfg.Path, err))
	}
	return f, nil
}
