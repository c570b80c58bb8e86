// Command fakeidp runs a stand-in upstream identity provider on loopback
// that speaks Okta's, Google's and Facebook's endpoint shapes, for the demo
// and for manual tests. It is a development tool: never expose it.
//
//	fakeidp --listen 127.0.0.1:5556 [--users users.yaml]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], logger); err != nil {
		logger.Error("fakeidp", "err", err)
		os.Exit(1)
	}
}

func run(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("fakeidp", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5556", "address to listen on (loopback only)")
	usersFile := fs.String("users", "", "YAML or JSON file with users (and clients); default: the demo users")
	baseURL := fs.String("base-url", "", "external base URL of the issuers (default: taken from each request's Host)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: the fake IdP listens on loopback only", *listen)
	}
	cfg := fakeidp.DemoConfig()
	if *usersFile != "" {
		if cfg, err = fakeidp.LoadConfig(*usersFile); err != nil {
			return err
		}
	}
	if *baseURL != "" {
		cfg.BaseURL = *baseURL
	}
	idp, err := fakeidp.New(cfg, logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: idp, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	base := "http://" + ln.Addr().String()
	logger.Info("fakeidp listening", "addr", ln.Addr().String(),
		"okta_issuer", base+"/oauth2/default", "google_issuer", base, "facebook", base, "users", len(cfg.Users))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
