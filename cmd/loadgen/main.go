// Command loadgen drives a Bridgekeeper broker's token endpoint and JWKS
// at a given concurrency for a given time and prints throughput, latency
// percentiles and errors.
//
// Scenarios: code (authorization code exchange; codes are minted with the
// session cookie of one login and prompt=none), refresh (a refresh-token
// chain per worker), client_credentials, jwks. It refuses non-loopback
// targets unless --allow-remote is given, and with --dsn it creates its own
// clients and user through the bridgekeeper CLI.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/flow"
)

// maxDuration bounds one scenario's run.
const maxDuration = 10 * time.Minute

type options struct {
	target        string
	scenarios     []string
	concurrency   int
	duration      time.Duration
	allowRemote   bool
	clientID      string
	clientSecret  string
	redirectURI   string
	tokenURL      string
	passwordGrant bool
	ccID          string
	ccSecret      string
	ccScope       string
	email         string
	password      string
	dsn           string
	bridgekeeper  string
	format        string
	wait          time.Duration
	serverPID     int // 0: the server's CPU time is not measured
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := checkTarget(o.target, o.allowRemote); err != nil {
		return err
	}
	if o.wait > 0 {
		if err := waitReady(ctx, o.target, o.wait); err != nil {
			return err
		}
	}
	if o.dsn != "" {
		if err := setup(ctx, &o, stderr); err != nil {
			return err
		}
	}
	transport := &http.Transport{
		MaxIdleConns:        o.concurrency * 2,
		MaxIdleConnsPerHost: o.concurrency * 2,
		IdleConnTimeout:     time.Minute,
	}
	defer transport.CloseIdleConnections()
	d := &driver{o: o, transport: transport}
	var results []result
	for _, s := range o.scenarios {
		fmt.Fprintf(stderr, "loadgen: %s at concurrency %d for %v against %s\n", s, o.concurrency, o.duration, o.target)
		r, err := d.scenario(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		results = append(results, r...)
		if ctx.Err() != nil {
			break
		}
	}
	return report(stdout, o.format, results)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: loadgen --target URL [flags]

Drives a Bridgekeeper broker and prints req/s, p50/p90/p99 and errors per
scenario. With --dsn it registers its own clients and user first (through
the bridgekeeper CLI, which needs the broker's system secret, e.g.
$BRIDGEKEEPER_SYSTEM_SECRET).

Example:
  loadgen --target http://127.0.0.1:8080 --dsn sqlite:data/bk.db \
      --scenarios client_credentials,refresh,code,jwks --concurrency 8 --duration 10s

Flags:
`)
		fs.PrintDefaults()
	}
	var scenarios string
	fs.StringVar(&o.target, "target", "", "base URL of the broker (its issuer URL)")
	fs.StringVar(&scenarios, "scenarios", "client_credentials,refresh,code,jwks", "comma-separated scenarios: code, refresh, client_credentials, jwks")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent workers")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "time per scenario (at most 10m)")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow a target that is not on loopback")
	fs.StringVar(&o.clientID, "client-id", "", "public client for code and refresh (PKCE; set up by --dsn)")
	fs.StringVar(&o.clientSecret, "client-secret", os.Getenv("LOADGEN_REFRESH_CLIENT_SECRET"), "secret of --client-id when it is confidential (default $LOADGEN_REFRESH_CLIENT_SECRET)")
	fs.StringVar(&o.tokenURL, "token-url", "", "token endpoint (default: the target's "+flow.PathToken+"; another server's, e.g. Dex's {issuer}/token)")
	fs.BoolVar(&o.passwordGrant, "password-grant", false, "refresh: each worker starts its chain with the resource owner password grant as its own user\n(--email with %d for the worker's number) instead of a login and a code; for peers such as Dex")
	fs.StringVar(&o.redirectURI, "redirect-uri", "http://127.0.0.1:9/callback", "its registered redirect URI")
	fs.StringVar(&o.ccID, "cc-client-id", "", "confidential client for client_credentials (set up by --dsn)")
	fs.StringVar(&o.ccSecret, "cc-client-secret", os.Getenv("LOADGEN_CLIENT_SECRET"), "its secret (default $LOADGEN_CLIENT_SECRET)")
	fs.StringVar(&o.ccScope, "cc-scope", "", "scope to ask for with client_credentials")
	fs.StringVar(&o.email, "email", "", "user to log in as for code and refresh (set up by --dsn)")
	fs.StringVar(&o.password, "password", os.Getenv("LOADGEN_PASSWORD"), "that user's password (default $LOADGEN_PASSWORD)")
	fs.StringVar(&o.dsn, "dsn", "", "the broker's database: create a client pair and a user there first")
	fs.StringVar(&o.bridgekeeper, "bridgekeeper", "bridgekeeper", "bridgekeeper binary used by --dsn")
	fs.StringVar(&o.format, "format", "text", "output: text or markdown")
	fs.DurationVar(&o.wait, "wait", 0, "wait up to this long for the target's discovery document first")
	fs.IntVar(&o.serverPID, "server-pid", 0, "process id of the server on this machine (Linux): report its CPU time (user + system)\nper request over each measured run, set-up excluded")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	if o.target == "" {
		errs = append(errs, errors.New("--target is required"))
	}
	o.target = strings.TrimRight(o.target, "/")
	if o.tokenURL == "" {
		o.tokenURL = o.target + flow.PathToken
	}
	if o.serverPID != 0 {
		if _, err := processCPU(o.serverPID); err != nil {
			errs = append(errs, fmt.Errorf("--server-pid %d: %w", o.serverPID, err))
		}
	}
	if o.concurrency < 1 || o.concurrency > 1024 {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 1 to 1024", o.concurrency))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("--duration %v: want more than 0 and at most %v", o.duration, maxDuration))
	}
	if o.format != "text" && o.format != "markdown" {
		errs = append(errs, fmt.Errorf("--format %q: want text or markdown", o.format))
	}
	for _, s := range strings.Split(scenarios, ",") {
		switch s = strings.TrimSpace(s); s {
		case "code", "refresh", "client_credentials", "jwks":
			o.scenarios = append(o.scenarios, s)
		case "":
		default:
			errs = append(errs, fmt.Errorf("unknown scenario %q", s))
		}
	}
	for _, s := range o.scenarios {
		switch {
		case o.passwordGrant && s == "code":
			errs = append(errs, errors.New("scenario code cannot start from --password-grant"))
		case o.passwordGrant && (o.dsn != "" || o.clientID == "" || o.email == "" || o.password == ""):
			errs = append(errs, errors.New("--password-grant needs --client-id, --email and --password, and no --dsn (Bridgekeeper has no password grant)"))
		case o.dsn != "":
		case (s == "code" || s == "refresh") && (o.clientID == "" || o.email == "" || o.password == ""):
			errs = append(errs, fmt.Errorf("scenario %s needs --client-id, --email and --password (or --dsn)", s))
		case s == "client_credentials" && (o.ccID == "" || o.ccSecret == ""):
			errs = append(errs, errors.New("scenario client_credentials needs --cc-client-id and --cc-client-secret (or --dsn)"))
		}
	}
	return o, errors.Join(errs...)
}

// checkTarget refuses targets off loopback unless allowRemote: a load
// generator must not be pointed at someone else's server by accident.
func checkTarget(target string, allowRemote bool) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--target %q: want an http(s) URL", target)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		if addrs, err = net.LookupHost(host); err != nil {
			return fmt.Errorf("--target %q: %w", target, err)
		}
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("--target %q is not on loopback (%s); pass --allow-remote to load a remote server", target, a)
		}
	}
	return nil
}

func randomSuffix() string { return strings.ToLower(rand.Text()[:10]) }

// waitReady polls the target's discovery document until it answers 200.
func waitReady(ctx context.Context, target string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target+"/.well-known/openid-configuration", nil)
		if err != nil {
			return err
		}
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v", target, wait)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
