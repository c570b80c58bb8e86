package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/cryptobackend"
	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// serveInProcess runs `bridgekeeper serve` with args until the test ends,
// and returns what it writes to its standard error (the log).
func serveInProcess(t *testing.T, args ...string) *syncbuf.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	errOut := new(syncbuf.Buffer)
	root := newRootCommand(strings.NewReader(""), &out, errOut)
	root.SetArgs(append([]string{"serve"}, args...))
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return errOut
}

// The start log says which crypto implementation signs (Go's own, or
// BoringCrypto in a `make build CRYPTO=boring` build), so an operator can
// tell which build runs.
func TestServeLogsCryptoImplementation(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	addr := testenv.FreeAddr(t)
	log := serveInProcess(t, "--issuer", "http://"+addr, "--listen", addr, "--dsn", "sqlite:"+filepath.Join(t.TempDir(), "bk.db"))
	getStatus(t, "http://"+addr+"/healthz")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "bridgekeeper is serving") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if want := "crypto=" + cryptobackend.Name(); !strings.Contains(log.String(), want) {
		t.Errorf("the start log does not say %s:\n%s", want, log.String())
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res.StatusCode, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsOffThePublicListener backs docs/ops.md and SECURITY.md: by
// default /metrics is not on the public listener (it tells anyone the
// clients' error rates, the connectors and the database's health); with
// metrics.listen it is served on that address only.
func TestMetricsOffThePublicListener(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	for _, withListener := range []bool{false, true} {
		dir := t.TempDir()
		addr := testenv.FreeAddr(t)
		issuer := "http://" + addr
		args := []string{"--issuer", issuer, "--listen", addr, "--dsn", "sqlite:" + filepath.Join(dir, "bk.db")}
		metricsAddr := ""
		if withListener {
			metricsAddr = testenv.FreeAddr(t)
			args = append(args, "--metrics.listen", metricsAddr)
		}
		serveInProcess(t, args...)
		if status, _ := getStatus(t, issuer+"/healthz"); status != http.StatusOK {
			t.Fatalf("healthz: %d", status)
		}
		getStatus(t, issuer+"/.well-known/openid-configuration")
		if status, body := getStatus(t, issuer+"/metrics"); status == http.StatusOK || strings.Contains(body, "bridgekeeper_") {
			t.Errorf("metrics.listen=%q: /metrics on the public listener: %d", metricsAddr, status)
		}
		if withListener {
			status, body := getStatus(t, "http://"+metricsAddr+"/metrics")
			if status != http.StatusOK || !strings.Contains(body, "bridgekeeper_http_requests_total") {
				t.Errorf("/metrics on metrics.listen: %d %.200s", status, body)
			}
		}
	}
}

// TestMetricsOffEvenWithAListener backs docs/ops.md: metrics.off: true
// serves no /metrics even when metrics.listen is set (nothing listens
// there), and the public listener has none either.
func TestMetricsOffEvenWithAListener(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	dir := t.TempDir()
	addr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	issuer := "http://" + addr
	serveInProcess(t, "--issuer", issuer, "--listen", addr, "--dsn", "sqlite:"+filepath.Join(dir, "bk.db"),
		"--metrics.listen", metricsAddr, "--metrics.off")
	if status, _ := getStatus(t, issuer+"/healthz"); status != http.StatusOK {
		t.Fatalf("healthz: %d", status)
	}
	if res, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK || strings.Contains(string(body), "bridgekeeper_") {
			t.Errorf("metrics.off with metrics.listen: /metrics served on %s: %d", metricsAddr, res.StatusCode)
		}
	}
	if status, body := getStatus(t, issuer+"/metrics"); status == http.StatusOK || strings.Contains(body, "bridgekeeper_") {
		t.Errorf("/metrics on the public listener: %d", status)
	}
}
