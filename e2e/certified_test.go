package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestCertifiedRelyingParty sets a broker up with the exact CLI forms an
// operator scripts, then lets openid-client (panva's OpenID Certified
// relying-party library for JavaScript) run the whole protocol against it
// with no special casing. See oidc-client/flow.mjs for the checks.
func TestCertifiedRelyingParty(t *testing.T) {
	testenv.Require(t, testenv.FileExists("oidc-client/node_modules/openid-client"), "openid-client (npm ci --prefix e2e/oidc-client)")

	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("e2e-secret-", 4)}
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
			if b.Name != "sqlite" {
				_, dsn = b.Open(t)
			}
			addr := testenv.FreeAddr(t)
			issuer := "http://" + addr
			redirect := "http://127.0.0.1:5173/callback"
			postLogout := "http://127.0.0.1:5173/"
			confSecret := "conf-secret-0123456789-0123456789-abcdef"

			testenv.CLI(t, env, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public",
				"--redirect-uri", redirect, "--allowed-origin", "http://127.0.0.1:5173",
				"--post-logout-redirect-uri", postLogout,
				// Its access tokens are meant for the backend, which may
				// therefore introspect them.
				"--audience", "backend", "--default-audience", "backend")
			testenv.CLI(t, env, confSecret+"\n", "client", "create", "--dsn", dsn, "--id", "backend", "--secret-stdin",
				"--grant", "client_credentials", "--grant", "authorization_code", "--grant", "refresh_token",
				"--redirect-uri", "http://127.0.0.1:5174/callback")
			testenv.CLI(t, env, "correct horse battery staple\n", "user", "create", "--dsn", dsn,
				"--email", "ada@example.com", "--password-stdin")

			testenv.Serve(t, env, issuer, "--issuer", issuer, "--listen", addr, "--dsn", dsn,
				"--tokens.refresh-reuse-grace", "1s")

			runNode(t, "oidc-client", "flow.mjs",
				"BK_ISSUER="+issuer,
				"BK_PUBLIC_CLIENT=spa",
				"BK_REDIRECT_URI="+redirect,
				"BK_POST_LOGOUT_URI="+postLogout,
				"BK_CONF_CLIENT=backend",
				"BK_CONF_SECRET="+confSecret,
				"BK_EMAIL=ada@example.com",
				"BK_PASSWORD=correct horse battery staple",
				"BK_REUSE_GRACE_MS=1000",
			)
		})
	}
}
