package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/flow"
)

// driver runs scenarios against one target.
type driver struct {
	o         options
	transport *http.Transport

	loginOnce sync.Once
	session   *flow.Client // logged in once; its cookie mints codes
	loginErr  error
}

// result is one measured operation of a scenario.
type result struct {
	name      string
	duration  time.Duration
	latencies []time.Duration // successful requests
	errors    int
	firstErrs []string
	// serverCPU is the server's CPU time over the run (with --server-pid),
	// shared by the run's operations; -1: not measured.
	serverCPU time.Duration
	requests  int // every operation's requests in the run
}

func (r result) rate() float64 {
	return float64(len(r.latencies)+r.errors) / r.duration.Seconds()
}

func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p*float64(len(r.latencies))+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// recorder collects one worker's measurements of one operation.
type recorder struct {
	latencies []time.Duration
	errors    int
	firstErrs []string
}

func (r *recorder) observe(start time.Time, err error) {
	if err != nil {
		r.errors++
		if len(r.firstErrs) < 3 {
			r.firstErrs = append(r.firstErrs, err.Error())
		}
		return
	}
	r.latencies = append(r.latencies, time.Since(start))
}

// op is one measured step of a worker's loop.
type op struct {
	name string
	run  func(ctx context.Context, w *worker) error
}

// worker is one concurrent loop with its own state (a refresh chain).
type worker struct {
	n       int // its number, from 0
	client  *flow.Client
	refresh string
}

// tokenClient posts to the token endpoint as one client: with HTTP Basic
// authentication when it has a secret, else with client_id in the form. The
// client_credentials and refresh scenarios use it against Bridgekeeper and
// against peers alike (their token endpoints live at other paths).
type tokenClient struct {
	url, id, secret string
	http            *http.Client
}

func (d *driver) tokenClient(id, secret string) *tokenClient {
	return &tokenClient{url: d.o.tokenURL, id: id, secret: secret, http: &http.Client{Transport: d.transport, Timeout: 30 * time.Second}}
}

func (c *tokenClient) post(ctx context.Context, form url.Values) (flow.Tokens, error) {
	if c.secret == "" {
		form.Set("client_id", c.id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(form.Encode()))
	if err != nil {
		return flow.Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	}
	res, err := c.http.Do(req)
	if err != nil {
		return flow.Tokens{}, err
	}
	defer res.Body.Close()
	t := flow.Tokens{}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&t); err != nil {
		return flow.Tokens{Status: res.StatusCode}, fmt.Errorf("token endpoint answered %d with no JSON: %w", res.StatusCode, err)
	}
	t.Status = res.StatusCode
	return t, nil
}

func (d *driver) login(ctx context.Context) (*flow.Client, error) {
	d.loginOnce.Do(func() {
		c := flow.New(d.o.clientID, d.o.redirectURI, d.transport)
		if _, err := c.Login(ctx, d.o.target, d.o.email, d.o.password); err != nil {
			d.loginErr = err
			return
		}
		d.session = c
	})
	return d.session, d.loginErr
}

func (d *driver) scenario(ctx context.Context, name string) ([]result, error) {
	var ops []op
	var prepare func(ctx context.Context, w *worker) error
	switch name {
	case "jwks":
		ops = []op{{"jwks", func(ctx context.Context, w *worker) error { return d.getJWKS(ctx) }}}
	case "client_credentials":
		cc := d.tokenClient(d.o.ccID, d.o.ccSecret)
		ops = []op{{"client_credentials", func(ctx context.Context, w *worker) error {
			form := url.Values{"grant_type": {"client_credentials"}}
			if d.o.ccScope != "" {
				form.Set("scope", d.o.ccScope)
			}
			t, err := cc.post(ctx, form)
			return tokenErr(t, err)
		}}}
	case "refresh":
		rc := d.tokenClient(d.o.clientID, d.o.clientSecret)
		prepare = func(ctx context.Context, w *worker) error {
			t, err := d.newGrant(ctx, w, rc)
			w.refresh = t.RefreshToken
			if err == nil && t.RefreshToken == "" {
				err = errors.New("the grant came without a refresh token")
			}
			return err
		}
		ops = []op{{"refresh_token (chain per worker)", func(ctx context.Context, w *worker) error {
			t, err := rc.post(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refresh}})
			if err := tokenErr(t, err); err != nil {
				// Start a new chain so one failure does not end the worker.
				t, nerr := d.newGrant(ctx, w, rc)
				if nerr == nil {
					w.refresh = t.RefreshToken
				}
				return err
			}
			w.refresh = t.RefreshToken
			return nil
		}}}
	case "code":
		prepare = func(ctx context.Context, w *worker) error {
			c, err := d.login(ctx)
			w.client = c
			return err
		}
		var pending sync.Map // *worker -> flow.Code minted by the previous op
		ops = []op{
			{"authorize (prompt=none, session cookie)", func(ctx context.Context, w *worker) error {
				code, err := w.client.Authorize(ctx, d.o.target)
				if err == nil {
					pending.Store(w, code)
				}
				return err
			}},
			{"authorization_code exchange", func(ctx context.Context, w *worker) error {
				v, ok := pending.LoadAndDelete(w)
				if !ok {
					return errSkip
				}
				t, err := w.client.Exchange(ctx, d.o.target, v.(flow.Code))
				return tokenErr(t, err)
			}},
		}
	default:
		return nil, fmt.Errorf("unknown scenario %q", name)
	}
	return d.load(ctx, prepare, ops)
}

// errSkip marks an op that had nothing to do (not counted).
var errSkip = errors.New("skipped")

// newGrant logs in once (shared session) and redeems a fresh code for w;
// with --password-grant it asks for w's own user's tokens with the
// password grant instead.
func (d *driver) newGrant(ctx context.Context, w *worker, rc *tokenClient) (flow.Tokens, error) {
	if d.o.passwordGrant {
		user := d.o.email
		if strings.Contains(user, "%d") {
			user = fmt.Sprintf(user, w.n)
		}
		t, err := rc.post(ctx, url.Values{"grant_type": {"password"}, "username": {user},
			"password": {d.o.password}, "scope": {"openid offline_access"}})
		return t, tokenErr(t, err)
	}
	c, err := d.login(ctx)
	if err != nil {
		return flow.Tokens{}, err
	}
	w.client = c
	code, err := c.Authorize(ctx, d.o.target)
	if err != nil {
		return flow.Tokens{}, err
	}
	t, err := c.Exchange(ctx, d.o.target, code)
	return t, tokenErr(t, err)
}

func tokenErr(t flow.Tokens, err error) error {
	if err != nil {
		return err
	}
	if !t.OK() {
		return fmt.Errorf("token endpoint: %s", t)
	}
	return nil
}

func (d *driver) getJWKS(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.o.target+flow.PathJWKS, nil)
	if err != nil {
		return err
	}
	res, err := d.transport.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("JWKS answered %d", res.StatusCode)
	}
	return err
}

// load runs the workers for the configured duration; each loops over ops
// in order and measures each one.
func (d *driver) load(ctx context.Context, prepare func(context.Context, *worker) error, ops []op) ([]result, error) {
	workers := make([]*worker, d.o.concurrency)
	for i := range workers {
		workers[i] = &worker{n: i}
		if prepare != nil {
			if err := prepare(ctx, workers[i]); err != nil {
				return nil, fmt.Errorf("prepare worker %d: %w", i, err)
			}
		}
	}
	recs := make([][]recorder, len(workers))
	cpu0, err := d.serverCPU()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithTimeout(ctx, d.o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i, w := range workers {
		recs[i] = make([]recorder, len(ops))
		wg.Go(func() {
			for runCtx.Err() == nil {
				for j, o := range ops {
					t0 := time.Now()
					err := o.run(runCtx, w)
					if errors.Is(err, errSkip) || runCtx.Err() != nil {
						continue // cut off by the end of the run: not an error
					}
					recs[i][j].observe(t0, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := d.serverCPU()
	if err != nil {
		return nil, err
	}
	requests := 0
	for i := range workers {
		for j := range ops {
			requests += len(recs[i][j].latencies) + recs[i][j].errors
		}
	}
	out := make([]result, len(ops))
	for j, o := range ops {
		r := result{name: o.name, duration: elapsed, serverCPU: -1, requests: requests}
		if d.o.serverPID != 0 {
			r.serverCPU = cpu1 - cpu0
		}
		for i := range workers {
			r.latencies = append(r.latencies, recs[i][j].latencies...)
			r.errors += recs[i][j].errors
			if len(r.firstErrs) < 3 {
				r.firstErrs = append(r.firstErrs, recs[i][j].firstErrs...)
			}
		}
		slices.Sort(r.latencies)
		r.firstErrs = r.firstErrs[:min(len(r.firstErrs), 3)]
		out[j] = r
	}
	return out, nil
}

// serverCPU is the CPU time of the server named by --server-pid so far
// (0 without one).
func (d *driver) serverCPU() (time.Duration, error) {
	if d.o.serverPID == 0 {
		return 0, nil
	}
	return processCPU(d.o.serverPID)
}

// cpuPerRequest is the server's CPU time per request of the run, in µs
// ("-" when not measured).
func (r result) cpuPerRequest() string {
	if r.serverCPU < 0 || r.requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(r.serverCPU.Microseconds())/float64(r.requests))
}

func report(w io.Writer, format string, results []result) error {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	if format == "markdown" {
		fmt.Fprintln(w, "| operation | requests | errors | req/s | p50 | p90 | p99 | max | server CPU µs/req |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	} else {
		fmt.Fprintf(w, "%-42s %9s %7s %10s %10s %10s %10s %10s %12s\n", "operation", "requests", "errors", "req/s", "p50", "p90", "p99", "max", "cpu µs/req")
	}
	for _, r := range results {
		n := len(r.latencies) + r.errors
		maxL := time.Duration(0)
		if len(r.latencies) > 0 {
			maxL = r.latencies[len(r.latencies)-1]
		}
		if format == "markdown" {
			fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %s | %s | %s |\n", r.name, n, r.errors, r.rate(),
				ms(r.percentile(.5)), ms(r.percentile(.9)), ms(r.percentile(.99)), ms(maxL), r.cpuPerRequest())
		} else {
			fmt.Fprintf(w, "%-42s %9d %7d %10.1f %10s %10s %10s %10s %12s\n", r.name, n, r.errors, r.rate(),
				ms(r.percentile(.5)), ms(r.percentile(.9)), ms(r.percentile(.99)), ms(maxL), r.cpuPerRequest())
		}
		for _, e := range r.firstErrs {
			fmt.Fprintf(w, "    error: %s\n", e)
		}
	}
	return nil
}
