package interop

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// TestShippedBrokerAndAPIs runs the broker the way the demo does — the
// bridgekeeper binary, its CLI for the client, SQLite — and the APIs
// against it.
func TestShippedBrokerAndAPIs(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("interop-secret-", 3)}
	testenv.CLI(t, env, backendSecret+"\n", "client", "create", "--dsn", dsn, "--id", "backend", "--secret-stdin",
		"--grant", "client_credentials", "--scope", "profile", "--scope", "checkout",
		"--audience", apiAudience, "--default-audience", apiAudience)

	addr := testenv.FreeAddr(t)
	b := &realBroker{issuer: "http://" + addr}
	testenv.Serve(t, env, b.issuer, "--issuer", b.issuer, "--listen", addr, "--dsn", dsn)
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
