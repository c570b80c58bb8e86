// Command example-api is a small API protected by Bridgekeeper access
// tokens, the relying party of the demo: /api/profile needs any valid token,
// /api/checkout a token with scope "checkout", /api/health nothing.
// DPoP-bound tokens (RFC 9449) are accepted with their proofs, and the
// clients named by --dpop-required-client must use them.
//
//	example-api --issuer http://127.0.0.1:8080 --audience http://127.0.0.1:9090 \
//	    --allowed-origin http://127.0.0.1:5173 --dpop-required-client demo
//
// Every flag can also be set in the environment: EXAMPLE_API_ISSUER,
// EXAMPLE_API_LISTEN, EXAMPLE_API_AUDIENCE, EXAMPLE_API_ALLOWED_ORIGIN
// (comma-separated), EXAMPLE_API_REFETCH_INTERVAL, EXAMPLE_API_ISSUER_WAIT,
// EXAMPLE_API_PUBLIC_URL, EXAMPLE_API_DPOP_REQUIRED_CLIENT (comma-separated),
// EXAMPLE_API_DPOP_REQUIRED.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bridgekeeper/bridgekeeper/rp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.Getenv, logger); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stdout, usage())
	} else if err != nil {
		logger.Error("example-api", "error", err)
		os.Exit(1)
	}
}

// defineFlags declares the flags on fs, with defaults from the environment.
func defineFlags(fs *flag.FlagSet, o *options, env func(name, fallback string) string, refetch, wait time.Duration, origins, dpopClients *string) {
	fs.StringVar(&o.issuer, "issuer", env("ISSUER", ""), "Bridgekeeper issuer URL (required)")
	fs.StringVar(&o.listen, "listen", env("LISTEN", "127.0.0.1:9090"), "address to listen on")
	fs.StringVar(&o.audience, "audience", env("AUDIENCE", ""), "audience tokens must carry (empty: any, with a warning)")
	fs.Func("allowed-origin", "browser origin allowed by CORS (repeatable, or comma-separated)", func(v string) error {
		*origins += "," + v
		return nil
	})
	fs.DurationVar(&o.refetchInterval, "refetch-interval", refetch, "least time between JWKS fetches for unknown keys")
	fs.DurationVar(&o.issuerWait, "issuer-wait", wait, "how long to retry reaching the issuer at start-up")
	fs.StringVar(&o.publicURL, "public-url", env("PUBLIC_URL", ""), "the API's URL as clients call it, which DPoP proofs name (default http://LISTEN)")
	fs.Func("dpop-required-client", "client_id whose tokens must be DPoP-bound (repeatable, or comma-separated)", func(v string) error {
		*dpopClients += "," + v
		return nil
	})
	fs.BoolVar(&o.dpopRequired, "dpop-required", env("DPOP_REQUIRED", "") == "true", "every token must be DPoP-bound")
}

type options struct {
	issuer          string
	listen          string
	audience        string
	allowedOrigins  []string
	refetchInterval time.Duration
	issuerWait      time.Duration
	publicURL       string
	dpopClients     []string
	dpopRequired    bool
}

func parseFlags(args []string, getenv func(string) string) (options, error) {
	env := func(name, fallback string) string {
		if v := getenv("EXAMPLE_API_" + name); v != "" {
			return v
		}
		return fallback
	}
	envDuration := func(name string, fallback time.Duration) (time.Duration, error) {
		v := getenv("EXAMPLE_API_" + name)
		if v == "" {
			return fallback, nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("EXAMPLE_API_%s: %w", name, err)
		}
		return d, nil
	}
	var o options
	refetch, err := envDuration("REFETCH_INTERVAL", rp.DefaultRefetchInterval)
	if err != nil {
		return o, err
	}
	wait, err := envDuration("ISSUER_WAIT", 30*time.Second)
	if err != nil {
		return o, err
	}
	fs := flag.NewFlagSet("example-api", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	origins, dpopClients := env("ALLOWED_ORIGIN", ""), env("DPOP_REQUIRED_CLIENT", "")
	defineFlags(fs, &o, env, refetch, wait, &origins, &dpopClients)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.issuer == "" {
		return o, errors.New("--issuer (or EXAMPLE_API_ISSUER) is required")
	}
	for origin := range strings.SplitSeq(origins, ",") {
		if origin = strings.TrimSpace(origin); origin != "" {
			o.allowedOrigins = append(o.allowedOrigins, strings.TrimSuffix(origin, "/"))
		}
	}
	for id := range strings.SplitSeq(dpopClients, ",") {
		if id = strings.TrimSpace(id); id != "" {
			o.dpopClients = append(o.dpopClients, id)
		}
	}
	return o, nil
}

// usage is the --help text: what the API serves and every flag.
func usage() string {
	var b strings.Builder
	b.WriteString(`Usage: example-api --issuer URL [flags]

An example API protected by Bridgekeeper access tokens (package rp):
  GET  /api/health    no token needed
  GET  /api/profile   any valid access token; answers with the claims it verified
  POST /api/checkout  needs the scope "checkout"
Tokens are verified offline against the issuer's JWKS: "Authorization: Bearer",
or "Authorization: DPoP" with a DPoP proof for DPoP-bound tokens (RFC 9449).
Every flag can also be set as EXAMPLE_API_<NAME> (e.g. EXAMPLE_API_ISSUER).

Flags:
`)
	fs := flag.NewFlagSet("example-api", flag.ContinueOnError)
	var o options
	defineFlags(fs, &o, func(_, fallback string) string { return fallback }, rp.DefaultRefetchInterval, 30*time.Second, new(string), new(string))
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

func run(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger) error {
	o, err := parseFlags(args, getenv)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if o.publicURL == "" {
		o.publicURL = "http://" + ln.Addr().String()
	}
	verifierOpts := []rp.Option{rp.WithLogger(logger), rp.WithRefetchInterval(o.refetchInterval),
		rp.WithPublicURL(o.publicURL), rp.WithDPoPRequiredFor(o.dpopClients...)}
	if o.dpopRequired {
		verifierOpts = append(verifierOpts, rp.WithDPoPRequired())
	}
	if o.audience != "" {
		verifierOpts = append(verifierOpts, rp.WithAudience(o.audience))
	} else {
		logger.Warn("no --audience: accepting tokens minted for any API of this issuer")
		verifierOpts = append(verifierOpts, rp.WithAnyAudience())
	}
	v, err := waitForIssuer(ctx, o, verifierOpts, logger)
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           newHandler(v, o.allowedOrigins, logger),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", ln.Addr().String(), "issuer", o.issuer, "audience", o.audience,
		"allowed_origins", strings.Join(o.allowedOrigins, ","), "public_url", o.publicURL,
		"dpop_required_clients", strings.Join(o.dpopClients, ","), "dpop_required", o.dpopRequired)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// waitForIssuer builds the verifier, retrying while the issuer is not up yet
// (the API often starts before the broker).
func waitForIssuer(ctx context.Context, o options, opts []rp.Option, logger *slog.Logger) (*rp.Verifier, error) {
	ctx, cancel := context.WithTimeout(ctx, o.issuerWait)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		v, err := rp.NewVerifier(ctx, o.issuer, opts...)
		if err == nil {
			return v, nil
		}
		logger.Warn("issuer not reachable yet", "issuer", o.issuer, "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("issuer %s: %w", o.issuer, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
