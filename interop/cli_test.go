package interop

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedBrokerAndAPIs runs the broker the way the demo does — the
// bridgekeeper binary, its CLI for the client, SQLite — and the APIs
// against it.
func TestShippedBrokerAndAPIs(t *testing.T) {
	bk := binary(t, "bridgekeeper")
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	env := append(os.Environ(), "BRIDGEKEEPER_SYSTEM_SECRET="+strings.Repeat("interop-secret-", 3))

	create := exec.Command(bk, "client", "create", "--dsn", dsn, "--id", "backend", "--secret-stdin",
		"--grant", "client_credentials", "--scope", "profile", "--scope", "checkout",
		"--audience", apiAudience, "--default-audience", apiAudience)
	create.Env = env
	create.Stdin = strings.NewReader(backendSecret + "\n")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("bridgekeeper client create: %v\n%s", err, out)
	}

	addr := freeAddr(t)
	serve := exec.Command(bk, "serve", "--issuer", "http://"+addr, "--listen", addr, "--dsn", dsn)
	serve.Env = env
	b := &realBroker{issuer: startProcess(t, serve)}
	shopper := b.token(t, "backend", "profile checkout")
	browser := b.token(t, "backend", "profile")

	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			base := kind.start(t, b.issuer, apiAudience)
			expect(t, "profile", base+"/api/profile", browser, 200, "", "backend")
			expect(t, "checkout without the scope", base+"/api/checkout", browser, 403, "insufficient_scope", "")
			expect(t, "checkout with the scope", base+"/api/checkout", shopper, 200, "", "backend")
		})
	}
	t.Run("go-oidc", func(t *testing.T) {
		goOIDCAccepts(t, goOIDCVerifier(t, b.issuer, apiAudience), "broker token", shopper, "backend")
	})
}

// freeAddr returns a 127.0.0.1 address whose port is free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
