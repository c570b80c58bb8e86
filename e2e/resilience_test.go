package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
	"github.com/bridgekeeper/bridgekeeper/internal/flow"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Environment switches of the resilience test.
const (
	// resilienceEnv=1 runs TestResilience (about two minutes; `make
	// test-resilience`).
	resilienceEnv = "BRIDGEKEEPER_TEST_RESILIENCE"
	// pgRestartEnv=1 (or CI=true) lets it restart the local Postgres
	// cluster once, with pg_ctlcluster.
	pgRestartEnv = "BRIDGEKEEPER_TEST_PG_RESTART"
	// pgRestartCmdEnv holds a shell command that restarts the Postgres of
	// $BRIDGEKEEPER_TEST_POSTGRES instead (e.g. pg_ctl -D DIR restart for a
	// private cluster); setting it opts in too.
	pgRestartCmdEnv = "BRIDGEKEEPER_TEST_PG_RESTART_CMD"
)

// Timeline of the fault injection.
const (
	resilienceLoad   = 100 * time.Second // mixed load
	pluginKillEvery  = 20 * time.Second
	pgRestartAt      = 50 * time.Second
	restartGrace     = 15 * time.Second // failures tolerated after Postgres is back
	pluginKillWindow = 3 * time.Second  // federated calls in flight when a plugin dies may fail
	retryFor         = 45 * time.Second // a step failing with 5xx is retried this long
)

// TestResilience runs mixed load — local logins with code exchange and
// refresh chains across two replicas, federated logins through a connector
// plugin, client credentials — while the plugin is killed every 20 s and
// (in CI, or when asked) Postgres restarts once. It asserts no 5xx outside
// the restart window, no grant lost (every chain's latest refresh token
// still works afterwards) and none duplicated (rotated tokens and spent
// codes are refused).
func TestResilience(t *testing.T) {
	if os.Getenv(resilienceEnv) != "1" {
		t.Skipf("skipping: set %s=1 to run the two-minute resilience test (make test-resilience)", resilienceEnv)
	}
	restartCmd := os.Getenv(pgRestartCmdEnv)
	if restartCmd == "" && (os.Getenv(pgRestartEnv) == "1" || os.Getenv("CI") == "true") {
		testenv.Tool(t, "pg_ctlcluster", "pg_ctlcluster")
		versions, _ := filepath.Glob("/etc/postgresql/*")
		testenv.Require(t, len(versions) == 1, "exactly one Postgres cluster in /etc/postgresql")
		restartCmd = "pg_ctlcluster --skip-systemctl-redirect " + filepath.Base(versions[0]) + " main restart"
	}

	// The upstream IdP, and the connector plugin that talks to it.
	addrA, addrB := testenv.FreeAddr(t), testenv.FreeAddr(t)
	issuer := "http://" + addrA
	idpCfg := fakeidp.DemoConfig()
	idpCfg.Clients[0].RedirectURIs = append(idpCfg.Clients[0].RedirectURIs, issuer+"/callback/okta")
	idp, err := fakeidp.New(idpCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	idpTS := httptest.NewServer(idp)
	defer idpTS.Close()
	pluginPath := testenv.Binary(t, "./cmd/connector-oidc")
	confFile := filepath.Join(t.TempDir(), "bridgekeeper.yaml")
	conf := fmt.Sprintf(`connectors:
  - id: okta
    name: Okta
    path: %s
    call_timeout: 5s
    config:
      preset: okta
      domain: example.okta.com
      issuer: %s/oauth2/default
      client_id: bridgekeeper
      client_secret: bridgekeeper-secret
`, pluginPath, idpTS.URL)
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startReplicasAt(t, addrA, addrB, restartSafeSchema(t), "--config", confFile)
	ccSecret := "resilience-cc-secret-0123456789abcdef"
	testenv.CLI(t, p.env, ccSecret+"\n", "client", "create", "--dsn", p.dsn, "--id", "svc", "--secret-stdin",
		"--grant", "client_credentials", "--scope", "jobs")

	ctx, cancel := context.WithTimeout(context.Background(), resilienceLoad+2*retryFor)
	defer cancel()
	faults := &faultLog{}
	stats := &opStats{}

	// Faults.
	loadCtx, stopLoad := context.WithTimeout(ctx, resilienceLoad)
	defer stopLoad()
	var faultWG sync.WaitGroup
	faultWG.Go(func() {
		tick := time.NewTicker(pluginKillEvery)
		defer tick.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			pids := childProcesses(p.pids, pluginPath)
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			faults.add("plugin kill", time.Now(), time.Now().Add(pluginKillWindow))
			t.Logf("killed connector plugins %v", pids)
		}
	})
	if restartCmd != "" {
		faultWG.Go(func() {
			select {
			case <-loadCtx.Done():
				return
			case <-time.After(pgRestartAt):
			}
			start := time.Now()
			out, err := exec.CommandContext(ctx, "sh", "-c", restartCmd).CombinedOutput()
			end := time.Now()
			faults.add("postgres restart", start, end.Add(restartGrace))
			if err != nil {
				t.Errorf("restart Postgres (%s): %v\n%s", restartCmd, err, out)
				return
			}
			t.Logf("Postgres restarted in %v", end.Sub(start).Round(time.Millisecond))
		})
	}

	// Load.
	var (
		mu       sync.Mutex
		families []*family
	)
	keep := func(f *family) {
		mu.Lock()
		families = append(families, f)
		mu.Unlock()
	}
	var loadWG sync.WaitGroup
	for w := range 2 { // local accounts: a code per grant, then a refresh chain across replicas
		loadWG.Go(func() {
			c := p.client()
			if _, err := c.Login(ctx, p.a, replicaEmail, replicaPassword); err != nil {
				t.Errorf("worker %d: login: %v", w, err)
				return
			}
			for i := 0; loadCtx.Err() == nil; i++ {
				bases := [2]string{p.a, p.b}
				if (w+i)%2 == 1 {
					bases = [2]string{p.b, p.a}
				}
				var code flow.Code
				err := retry(ctx, stats, "authorize", false, func() (int, error) {
					var err error
					code, err = c.Authorize(ctx, bases[0])
					return statusOf(err), err
				})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				f, err := newFamily(ctx, c, bases[1], code, stats, false)
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				keep(f)
				for step := range 3 {
					if err := f.refresh(ctx, c, bases[step%2], stats, false); err != nil {
						t.Errorf("worker %d: %v", w, err)
						return
					}
				}
			}
		})
	}
	loadWG.Go(func() { // federated logins through the plugin
		for i := 0; loadCtx.Err() == nil; i++ {
			c := p.client() // a fresh browser: no broker session, so the upstream is asked
			c.Issuer = p.issuer
			base := []string{p.a, p.b}[i%2]
			var code flow.Code
			err := retry(ctx, stats, "federated login", true, func() (int, error) {
				var err error
				code, err = c.LoginUpstream(ctx, base, "okta", func(ctx context.Context, u string) (string, error) {
					back, err := fakeidp.Login(ctx, u, "1001")
					if err != nil {
						return "", err
					}
					return back.String(), nil
				})
				return statusOf(err), err
			})
			if err != nil {
				t.Errorf("federated: %v", err)
				return
			}
			f, err := newFamily(ctx, c, []string{p.b, p.a}[i%2], code, stats, true)
			if err != nil {
				t.Errorf("federated: %v", err)
				return
			}
			keep(f)
			if err := f.refresh(ctx, c, base, stats, true); err != nil { // re-checks upstream through the plugin
				t.Errorf("federated: %v", err)
				return
			}
		}
	})
	loadWG.Go(func() { // client credentials
		svc := flow.New("svc", "", nil)
		svc.ClientSecret = ccSecret
		for i := 0; loadCtx.Err() == nil; i++ {
			err := retry(ctx, stats, "client_credentials", false, func() (int, error) {
				tok, err := svc.ClientCredentials(ctx, []string{p.a, p.b}[i%2], "jobs")
				if err == nil && !tok.OK() {
					err = fmt.Errorf("client_credentials: %v", tok)
				}
				return tok.Status, err
			})
			if err != nil {
				t.Errorf("client_credentials: %v", err)
				return
			}
		}
	})
	loadWG.Wait()
	faultWG.Wait()
	t.Logf("load: %s; faults: %s", stats, faults)
	if t.Failed() {
		return
	}
	if len(families) < 10 {
		t.Fatalf("only %d grants made under load", len(families))
	}

	// Afterwards: no 5xx outside the fault windows, and no outage reported
	// to clients as a client error.
	for _, f := range stats.failures() {
		if misreported(f.err) {
			t.Errorf("%s at %s: the outage reached the client as a client error: %v", f.op, f.at.Format(time.TimeOnly+".000"), f.err)
		}
		if !faults.covers(f.at, f.federated) {
			t.Errorf("%s failed outside any fault window at %s: %v", f.op, f.at.Format(time.TimeOnly+".000"), f.err)
		}
	}
	// Every grant intact: its latest refresh token works once, its previous
	// one and its code do not (no duplicate grant). Federated grants all
	// belong to one upstream user whose upstream (Okta flavour) rotates
	// refresh tokens: refreshing them at once on both replicas also checks
	// that the replicas agree on the upstream token.
	var local, federated []*family
	for _, f := range families {
		if f.federated {
			federated = append(federated, f)
		} else {
			local = append(local, f)
		}
	}
	t.Run("local grants intact", func(t *testing.T) { checkFamilies(t, ctx, p, local) })
	t.Run("federated grants intact", func(t *testing.T) { checkFamilies(t, ctx, p, federated) })
}

// checkFamilies refreshes every grant's latest token (4 at a time,
// alternating replicas) and checks that its rotated token and its code are
// refused.
func checkFamilies(t *testing.T, ctx context.Context, p *replicaPair, families []*family) {
	c := p.client()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var mu sync.Mutex
	lost := 0
	for i, f := range families {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			base := []string{p.a, p.b}[i%2]
			if tok, err := c.Refresh(ctx, base, f.latest); err != nil || !tok.OK() {
				mu.Lock()
				lost++
				if lost <= 5 {
					t.Errorf("grant %d lost: its latest refresh token fails: %v %v", i, tok, err)
				}
				mu.Unlock()
				return
			}
			if f.previous != "" {
				if tok, _ := c.Refresh(ctx, base, f.previous); tok.OK() || tok.Status >= 500 {
					t.Errorf("grant %d duplicated: a rotated refresh token answered %v", i, tok)
				}
			}
			if tok, _ := c.Exchange(ctx, base, f.code); tok.OK() || tok.Status >= 500 {
				t.Errorf("grant %d duplicated: its code was redeemed again: %v", i, tok)
			}
		})
	}
	wg.Wait()
	if lost > 0 {
		t.Errorf("%d of %d grants lost", lost, len(families))
	}
	t.Logf("checked %d grants", len(families))
}

// family is one grant: its code and the refresh tokens of its chain.
type family struct {
	federated bool
	code      flow.Code
	latest    string
	previous  string
}

func newFamily(ctx context.Context, c *flow.Client, base string, code flow.Code, stats *opStats, federated bool) (*family, error) {
	var tok flow.Tokens
	err := retry(ctx, stats, "code exchange", federated, func() (int, error) {
		var err error
		tok, err = c.Exchange(ctx, base, code)
		if err == nil && !tok.OK() {
			err = fmt.Errorf("code exchange: %v", tok)
		}
		return tok.Status, err
	})
	if err != nil {
		return nil, err
	}
	return &family{federated: federated, code: code, latest: tok.RefreshToken}, nil
}

func (f *family) refresh(ctx context.Context, c *flow.Client, base string, stats *opStats, federated bool) error {
	var tok flow.Tokens
	err := retry(ctx, stats, "refresh", federated, func() (int, error) {
		var err error
		tok, err = c.Refresh(ctx, base, f.latest)
		if err == nil && !tok.OK() {
			err = fmt.Errorf("refresh: %v", tok)
		}
		return tok.Status, err
	})
	if err != nil {
		return err
	}
	f.previous, f.latest = f.latest, tok.RefreshToken
	return nil
}

// retry runs step until it succeeds. Failures that look like an outage
// (transport errors, 5xx, temporarily_unavailable) are recorded and retried
// for retryFor; any other failure ends the step.
func retry(ctx context.Context, stats *opStats, op string, federated bool, step func() (int, error)) error {
	deadline := time.Now().Add(retryFor)
	for {
		status, err := step()
		now := time.Now()
		stats.record(op, federated, now, status, err)
		if err == nil {
			return nil
		}
		if !outage(status, err) || now.After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// misreported is a failure that a working broker never answers for these
// registered clients, seen only when the database goes away: it is retried
// like an outage, and reported.
func misreported(err error) bool {
	return err != nil && strings.Contains(err.Error(), "invalid_client")
}

func outage(status int, err error) bool {
	if misreported(err) {
		return true
	}
	var se *flow.StatusError
	var ue *url.Error
	switch {
	case status >= 500:
		return true
	case errors.As(err, &se):
		return se.Status >= 500
	case errors.As(err, &ue):
		return true // transport error: connection refused or reset
	}
	return strings.Contains(err.Error(), "temporarily_unavailable")
}

func statusOf(err error) int {
	var se *flow.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	if err != nil {
		return 0
	}
	return http.StatusOK
}

// opStats records every attempt.
type opStats struct {
	mu    sync.Mutex
	count map[string]int
	fails []failure
}

type failure struct {
	op        string
	federated bool
	at        time.Time
	err       error
}

func (s *opStats) record(op string, federated bool, at time.Time, status int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == nil {
		s.count = map[string]int{}
	}
	s.count[op]++
	if err != nil && outage(status, err) {
		s.fails = append(s.fails, failure{op, federated, at, err})
	}
}

func (s *opStats) failures() []failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]failure(nil), s.fails...)
}

func (s *opStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := fmt.Sprintf("%v, %d outage failures", s.count, len(s.fails))
	for i, f := range s.fails {
		if i == 5 {
			out += "\n  …"
			break
		}
		out += fmt.Sprintf("\n  %s %s (federated %v): %v", f.at.Format(time.TimeOnly+".000"), f.op, f.federated, f.err)
	}
	return out
}

// faultLog holds the windows in which failures are expected.
type faultLog struct {
	mu      sync.Mutex
	windows []faultWindow
}

type faultWindow struct {
	what       string
	start, end time.Time
}

func (l *faultLog) add(what string, start, end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.windows = append(l.windows, faultWindow{what, start, end})
}

// covers says whether a failure at t is explained by a fault: a Postgres
// restart explains any failure, a plugin kill only federated ones.
func (l *faultLog) covers(t time.Time, federated bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.windows {
		if w.what == "plugin kill" && !federated {
			continue
		}
		if !t.Before(w.start.Add(-time.Second)) && !t.After(w.end) {
			return true
		}
	}
	return false
}

func (l *faultLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, w := range l.windows {
		parts = append(parts, fmt.Sprintf("%s at %s", w.what, w.start.Format(time.TimeOnly)))
	}
	return strings.Join(parts, ", ")
}

// childProcesses lists the processes running exe whose parent is one of
// parents (the plugin processes of our replicas).
func childProcesses(parents []int, exe string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		path, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || path != exe {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		for _, p := range parents {
			if ppid == p {
				out = append(out, pid)
			}
		}
	}
	return out
}

// restartSafeSchema is a fresh Postgres schema in the database of
// $BRIDGEKEEPER_TEST_POSTGRES, dropped at cleanup over a new connection (the
// test restarts the server, which ends older ones), and a DSN that selects
// it.
func restartSafeSchema(t *testing.T) string {
	t.Helper()
	testenv.Require(t, os.Getenv(storagetest.PostgresEnv) != "", "Postgres for the resilience test (set "+storagetest.PostgresEnv+")")
	return storagetest.RestartSafeDSN(t)
}
