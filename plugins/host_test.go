package plugins

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoginRoundTrip(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)

	info := p.Info()
	if info.SDK != wire.SDKName || !info.Refresh || info.Name == "" {
		t.Errorf("Info() = %+v, want the Go SDK with refresh and a name", info)
	}

	login, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{
		State:       "st-1",
		CallbackURL: "https://broker.test/callback/test",
		Scopes:      connectors.Scopes{OfflineAccess: true, Groups: true},
		LoginHint:   "ann@example.test",
	})
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	u, err := url.Parse(login.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "idp.test" || q.Get("state") != "st-1" || q.Get("redirect_uri") != "https://broker.test/callback/test" ||
		q.Get("scope") != "openid offline_access groups" || q.Get("login_hint") != "ann@example.test" {
		t.Errorf("login URL %s does not carry the request", login.URL)
	}
	if string(login.ConnectorState) != "nonce-st-1" {
		t.Errorf("connector state = %q", login.ConnectorState)
	}

	id, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: login.ConnectorState, CallbackURL: "https://broker.test/callback/test",
		Query: url.Values{"code": {"ann"}, "state": {"st-1"}},
	})
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	want := connectors.Identity{
		Subject:       "sub-ann",
		Email:         "ann@example.test",
		EmailVerified: true,
		Name:          "User ann",
		GivenName:     "User",
		FamilyName:    "ann",
		Picture:       "https://idp.test/pictures/ann",
		Groups:        []string{"admins", "devs"},
		Claims:        map[string]any{"department": "eng", "level": 3.0, "callback": "https://broker.test/callback/test"},
		ConnectorData: []byte("refresh-ann"),
	}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("identity\n got %+v\nwant %+v", id, want)
	}

	// form_post answers arrive in the form.
	formID, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: login.ConnectorState, CallbackURL: "https://broker.test/callback/test",
		Form: url.Values{"code": {"bob"}},
	})
	if err != nil || formID.Subject != "sub-bob" {
		t.Errorf("HandleCallback with a form = %+v, %v", formID, err)
	}

	refreshed, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{Groups: true}, id)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if refreshed.Name != "User ann (refreshed)" || !reflect.DeepEqual(refreshed.Groups, []string{"admins", "devs", "refreshed"}) ||
		string(refreshed.ConnectorData) != "refresh-ann" || refreshed.Claims["department"] != "eng" {
		t.Errorf("refreshed identity = %+v", refreshed)
	}

	// The plugin's own log lines reach the host's logger, tagged.
	r := sink.wait(ctx, t, messageIs("login started"))
	if r.Level != -4 || r.Attrs["connector"] != "test" || r.Attrs["source"] != "plugin" || r.Attrs["state"] != "st-1" {
		t.Errorf("plugin log record = %+v, want debug with connector=test source=plugin state=st-1", r)
	}
	r = sink.wait(ctx, t, messageIs("test connector configured"))
	if r.Attrs["connector"] != "test" || r.Attrs["issuer"] != "https://idp.test" {
		t.Errorf("configure log record = %+v", r)
	}
	// So do plain lines on standard output (through go-plugin's stdio
	// stream).
	r = sink.wait(ctx, t, messageIs("a plain line on standard output"))
	if r.Attrs["connector"] != "test" || r.Attrs["stream"] != "stdout" {
		t.Errorf("stdout log record = %+v", r)
	}
	if p.Restarts() != 0 {
		t.Errorf("Restarts() = %d", p.Restarts())
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := testContext(t)
	p, _ := launchTest(t, nil)
	state := []byte("nonce-x")
	callback := func(q url.Values) error {
		_, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: state, CallbackURL: "https://broker.test/callback/test", Query: q})
		return err
	}
	for _, tc := range []struct {
		name    string
		call    func() error
		want    error
		message string
	}{
		{"upstream denied", func() error { return callback(url.Values{"error": {"access_denied"}}) },
			connectors.ErrUpstreamDenied, "upstream answered access_denied"},
		{"invalid callback", func() error { return callback(url.Values{"state": {"x"}}) },
			connectors.ErrInvalidCallback, "no code in the callback"},
		{"policy", func() error { return callback(url.Values{"code": {"no-email"}}) },
			connectors.ErrPolicy, "the upstream gave no e-mail"},
		{"identity revoked", func() error {
			_, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{}, connectors.Identity{Subject: "sub-x", ConnectorData: []byte("refresh-revoked")})
			return err
		}, connectors.ErrIdentityRevoked, "user sub-x is disabled upstream"},
		{"internal", func() error { return callback(url.Values{"code": {"internal"}}) },
			ErrPluginFailed, "the token endpoint answered 500"},
		{"no subject", func() error { return callback(url.Values{"code": {"no-subject"}}) },
			ErrPluginFailed, "without a subject"},
		{"panic", func() error {
			_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: "panic"})
			return err
		}, ErrPluginFailed, "told to panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v does not wrap %v", err, tc.want)
			}
			for _, other := range []error{connectors.ErrUpstreamDenied, connectors.ErrInvalidCallback, connectors.ErrIdentityRevoked, connectors.ErrPolicy, ErrPluginFailed} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v also wraps %v", err, other)
				}
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), `connector "test"`) {
				t.Errorf("error %q lacks %q or the connector id", err, tc.message)
			}
			// The sentinel's text is said once, not once by the plugin
			// and again by the host.
			if n := strings.Count(err.Error(), tc.want.Error()); n > 1 {
				t.Errorf("error %q says %q %d times", err, tc.want, n)
			}
		})
	}
	// None of this cost the plugin its process.
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "after"}); err != nil {
		t.Errorf("LoginURL after the errors: %v", err)
	}
	if p.Restarts() != 0 {
		t.Errorf("Restarts() = %d, want 0", p.Restarts())
	}
}

// TestRefreshWithoutCapability: the connector of a plugin that declares no
// refresh capability is not a connectors.RefreshConnector, so the broker
// neither calls nor writes anything for it on a refresh grant; the plugin
// answers Unimplemented on the wire all the same.
func TestRefreshWithoutCapability(t *testing.T) {
	ctx := testContext(t)
	p, _ := launchTest(t, func(c *Config) { c.Config = []byte(`{"issuer":"https://idp.test","no_refresh":true}`) })
	if p.Info().Refresh {
		t.Fatal("Info().Refresh = true for a connector without Refresh")
	}
	if _, ok := p.Connector().(connectors.RefreshConnector); ok {
		t.Fatal("the connector of a plugin without the refresh capability is a RefreshConnector")
	}
	// The wire answer is Unimplemented.
	p.mu.Lock()
	rpc := p.cur.rpc
	p.mu.Unlock()
	_, err := rpc.Refresh(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "Unimplemented") {
		t.Errorf("raw Refresh error = %v, want Unimplemented", err)
	}
}

// TestCapabilitiesSurviveACrash: between a crash and the call that
// relaunches the plugin, the plugin keeps the capabilities it declared
// (Info, Connector, CanReauthenticate). Were they forgotten, the broker
// would take a crashed plugin for one that cannot re-check its users, and
// pass refresh grants unchecked until something relaunched it.
func TestCapabilitiesSurviveACrash(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	killFirst(ctx, t, p, sink)
	if p.Up() {
		t.Fatal("Up() after the crash")
	}
	if !p.Info().Refresh {
		t.Errorf("Info() after a crash = %+v, want the refresh capability", p.Info())
	}
	rc, ok := p.Connector().(connectors.RefreshConnector)
	if !ok {
		t.Fatal("the connector of a refreshing plugin is no RefreshConnector after a crash")
	}
	_, err := rc.Refresh(ctx, connectors.Scopes{}, connectors.Identity{Subject: "sub-x", ConnectorData: []byte("refresh-revoked")})
	if !errors.Is(err, connectors.ErrIdentityRevoked) {
		t.Errorf("Refresh after a crash: %v, want the plugin's answer (revoked)", err)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1 (Refresh relaunches)", p.Restarts())
	}
}

func TestChecksum(t *testing.T) {
	ctx := testContext(t)
	sum := sha256File(t, testConnector(t))

	p, _ := launchTest(t, func(c *Config) { c.SHA256 = strings.ToUpper(sum) })
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL with the right checksum: %v", err)
	}

	wrong := strings.Repeat("ab", 32)
	_, err := Launch(ctx, Config{ID: "test", Path: testConnector(t), SHA256: wrong, Config: []byte(`{"issuer":"x"}`)}, nil)
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("Launch with a wrong checksum: %v, want ErrChecksumMismatch", err)
	}
	for _, part := range []string{testConnector(t), sum, wrong} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not name %q", err, part)
		}
	}

	_, err = Launch(ctx, Config{ID: "test", Path: testConnector(t), SHA256: "abc"}, nil)
	if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Errorf("Launch with a malformed checksum: %v", err)
	}
}

func TestChecksumCheckedOnRelaunch(t *testing.T) {
	ctx := testContext(t)
	// A copy of the binary that the test can replace while it runs.
	path := filepath.Join(t.TempDir(), "connector")
	copyFile(t, testConnector(t), path)
	p, sink := launchTest(t, func(c *Config) { c.Path = path; c.SHA256 = sha256File(t, testConnector(t)) })

	// Replace the binary (as an attacker or a botched upgrade would), then
	// crash the plugin: the relaunch must refuse the new file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho not a plugin\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	killFirst(ctx, t, p, sink)
	_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"})
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("LoginURL after the binary changed: %v, want ErrChecksumMismatch", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestKilledMidCall(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	pid := pidOf(t, sink, 1)
	type observed struct {
		method string
		d      time.Duration
		err    error
	}
	var (
		obsMu sync.Mutex
		calls []observed
	)
	p.SetCallObserver(func(c Call) {
		obsMu.Lock()
		defer obsMu.Unlock()
		calls = append(calls, observed{c.Method, c.Duration, c.Err})
	})

	errc := make(chan error, 1)
	go func() {
		_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "doomed", LoginHint: "hang"})
		errc <- err
	}()
	sink.wait(ctx, t, messageIs("hanging"))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if !errors.Is(err, ErrPluginUnavailable) || !strings.Contains(err.Error(), "the plugin process exited") {
		t.Fatalf("the call in flight failed with %v, want ErrPluginUnavailable naming the exit", err)
	}

	// The next call launches a new process and works.
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "next"}); err != nil {
		t.Fatalf("the next call: %v", err)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1", p.Restarts())
	}
	// The call observer saw both calls: the failed one with its error, the
	// next one as a success.
	obsMu.Lock()
	if len(calls) != 2 || calls[0].method != "LoginURL" || !errors.Is(calls[0].err, ErrPluginUnavailable) ||
		calls[1].method != "LoginURL" || calls[1].err != nil || calls[0].d <= 0 || calls[1].d <= 0 {
		t.Errorf("observed calls = %+v, want a failed LoginURL then a successful one", calls)
	}
	obsMu.Unlock()
	if newPID := pidOf(t, sink, 2); newPID == pid {
		t.Errorf("the new process has the old pid %d", pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the killed process %d is still there: %v", pid, err)
	}
}

func TestExitMidCall(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: "exit"})
	if !errors.Is(err, ErrPluginUnavailable) {
		t.Fatalf("LoginURL: %v, want ErrPluginUnavailable", err)
	}
	sink.wait(ctx, t, messageIs("exiting mid-call"))
	if _, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: []byte("nonce-s"), CallbackURL: "https://broker.test/cb", Query: url.Values{"code": {"c"}}}); err != nil {
		t.Fatalf("HandleCallback after the crash: %v", err)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1", p.Restarts())
	}
}

// A plugin that fails three times in a row is not launched again at once:
// calls fail fast for CrashBackoff (doubling with each further failure),
// then a launch is tried, and an answered call ends the pause.
func TestCrashLoopBackoff(t *testing.T) {
	ctx := testContext(t)
	const backoff = 300 * time.Millisecond
	p, _ := launchTest(t, func(c *Config) { c.CrashBackoff = backoff })
	crash := func() error {
		_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: "exit"})
		return err
	}
	for i := range crashLoopAfter {
		if err := crash(); !errors.Is(err, ErrPluginUnavailable) {
			t.Fatalf("crash %d: %v, want ErrPluginUnavailable", i+1, err)
		}
	}
	restarts := p.Restarts()
	start := time.Now()
	_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"})
	if !errors.Is(err, ErrPluginUnavailable) || !strings.Contains(err.Error(), "failed 3 times in a row") {
		t.Fatalf("a call in the pause: %v, want a fast ErrPluginUnavailable", err)
	}
	if p.Restarts() != restarts {
		t.Errorf("a call in the pause launched the plugin (restarts %d → %d)", restarts, p.Restarts())
	}
	// After the pause a launch is tried; the plugin crashes again, and the
	// next pause is twice as long.
	time.Sleep(time.Until(start.Add(backoff + 50*time.Millisecond)))
	if err := crash(); !errors.Is(err, ErrPluginUnavailable) || strings.Contains(err.Error(), "in a row") {
		t.Fatalf("the call after the pause: %v, want a launch that crashes", err)
	}
	_, err = p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"})
	if err == nil || !strings.Contains(err.Error(), "failed 4 times in a row") {
		t.Fatalf("a call in the second pause: %v", err)
	}
	// Once a launch answers, the count starts over.
	time.Sleep(2*backoff + 50*time.Millisecond)
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("after the second pause: %v", err)
	}
	if err := crash(); !errors.Is(err, ErrPluginUnavailable) {
		t.Fatal(err)
	}
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Errorf("one crash after a good call is relaunched at once: %v", err)
	}
}

func TestCrashBetweenCalls(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	killFirst(ctx, t, p, sink)
	// A crash nobody was waiting on costs no call: the next one relaunches
	// first.
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL after an idle crash: %v", err)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1", p.Restarts())
	}
}

func TestHealthy(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	if err := p.Healthy(ctx); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
	killFirst(ctx, t, p, sink)
	if err := p.Healthy(ctx); err != nil {
		t.Fatalf("Healthy after a crash: %v", err)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1 (Healthy relaunches)", p.Restarts())
	}
}

func TestCallDeadline(t *testing.T) {
	ctx := testContext(t)
	p, _ := launchTest(t, func(c *Config) { c.CallTimeout = 300 * time.Millisecond })

	_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: "hang"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Fatalf("LoginURL on a hanging plugin: %v", err)
	}

	// A caller's own deadline is reported as the caller's.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = p.Connector().LoginURL(short, connectors.LoginRequest{State: "s", LoginHint: "hang"})
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("LoginURL with a short caller deadline: %v", err)
	}

	// A slow call is not a broken plugin.
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL after the timeouts: %v", err)
	}
	if p.Restarts() != 0 {
		t.Errorf("Restarts() = %d, want 0", p.Restarts())
	}
}

func TestClose(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	pid := pidOf(t, sink, 1)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("plugin process %d still exists after Close: %v", pid, err)
	}
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); !errors.Is(err, ErrClosed) {
		t.Errorf("LoginURL after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConfigureRefused(t *testing.T) {
	ctx := testContext(t)
	_, err := Launch(ctx, Config{ID: "test", Path: testConnector(t), Config: []byte(`{"fail_open":"client_secret is required"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "client_secret is required") || !strings.Contains(err.Error(), "refused its configuration") {
		t.Fatalf("Launch with a refused config: %v", err)
	}
}

func TestStartFailures(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	script := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"not executable", func() string {
			path := filepath.Join(dir, "plain")
			if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return path
		}(), "not executable (chmod +x"},
		{"a directory", dir, "is a directory"},
		{"dies", script("dies", "echo 'cannot find module @grpc/grpc-js' >&2\nexit 1\n"), "cannot find module @grpc/grpc-js"},
		{"not a plugin", script("chatty", "echo hello\n"), "Unrecognized remote plugin message: hello"},
		{"wrong protocol", script("v9", "echo '1|9|tcp|127.0.0.1:1|grpc'\nexec sleep 30\n"), "incompatible API version"},
		{"silent", script("silent", "exec sleep 30\n"), "timeout while waiting for plugin to start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Launch(ctx, Config{ID: "test", Path: tc.path, StartTimeout: 500 * time.Millisecond}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("Launch: %v; want an error naming %s and %q", err, tc.path, tc.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_DATABASE_DSN", "postgres://secret")
	// The test connector runs as a shell script around the real binary so
	// the test can see the environment it gets.
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	wrapper := filepath.Join(dir, "wrapper")
	body := "#!/bin/sh\nenv > " + envFile + "\nexec " + testConnector(t) + "\n"
	if err := os.WriteFile(wrapper, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	launchTest(t, func(c *Config) { c.Path = wrapper; c.Env = []string{"UPSTREAM_REGION=eu"} })
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	for _, want := range []string{"UPSTREAM_REGION=eu", MagicCookieKey + "=", LogLevelEnv + "=debug", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("plugin environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "BRIDGEKEEPER_DATABASE_DSN") {
		t.Errorf("the broker's environment leaked into the plugin:\n%s", env)
	}
}

func TestConcurrentCalls(t *testing.T) {
	ctx := testContext(t)
	p, _ := launchTest(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state := "s" + string(rune('a'+i))
			login, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: state})
			if err == nil && string(login.ConnectorState) != "nonce-"+state {
				err = errors.New("answer for another call: " + string(login.ConnectorState))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestCloseDuringCall(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, nil)
	pid := pidOf(t, sink, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", LoginHint: "hang"})
		errc <- err
	}()
	sink.wait(ctx, t, messageIs("hanging"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("the call in flight during Close: %v, want ErrClosed", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("plugin process %d still exists after Close: %v", pid, err)
	}
}

// TestStoppedPluginIsReplaced freezes the plugin (SIGSTOP): calls time out,
// the health check fails, and the host replaces the process even though it
// cannot take go-plugin's shutdown request.
func TestStoppedPluginIsReplaced(t *testing.T) {
	ctx := testContext(t)
	p, sink := launchTest(t, func(c *Config) { c.CallTimeout = 300 * time.Millisecond })
	pid := pidOf(t, sink, 1)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The plugin is this process's child: wait until it has stopped.
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, syscall.WUNTRACED, nil); err != nil || !ws.Stopped() {
		t.Fatalf("waiting for the plugin to stop: %v, status %v", err, ws)
	}
	_, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LoginURL on a frozen plugin: %v", err)
	}
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL after the replacement: %v", err)
	}
	if p.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1", p.Restarts())
	}
	// Close waits for the frozen process to be killed.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the frozen process %d is still there: %v", pid, err)
	}
}

func TestUpstreamTimeReported(t *testing.T) {
	ctx := testContext(t)
	const upstreamDelay = 20 * time.Millisecond
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(upstreamDelay)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer upstream.Close()
	p, _ := launchTest(t, nil)
	calls := make(chan Call, 4)
	p.SetCallObserver(func(c Call) { calls <- c })

	login, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "st-up"})
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	if c := <-calls; c.Method != "LoginURL" || c.Upstream != 0 || c.Err != nil {
		t.Errorf("LoginURL, which asks nothing upstream, was observed as %+v", c)
	}
	_, err = p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: login.ConnectorState, CallbackURL: "https://broker.test/callback/test",
		Query: url.Values{"code": {"ann"}, "upstream": {upstream.URL}},
	})
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	c := <-calls
	if c.Method != "HandleCallback" || c.Err != nil {
		t.Fatalf("observed %+v", c)
	}
	if c.Upstream < upstreamDelay || c.Upstream > c.Duration {
		t.Errorf("upstream time %v of a %v call, want at least the upstream's %v and at most the call", c.Upstream, c.Duration, upstreamDelay)
	}
}
