package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// TestPasskeysInBrowser runs a real broker (issuer http://localhost:PORT:
// WebAuthn wants a domain) and drives headless Chromium with its virtual
// authenticator through e2e/browser/passkeys.mjs: enrol, sign out, sign in
// with the passkey alone, new recovery codes confirmed with it (the
// request lists exactly its credential), a second profile without the
// credential, a clone with a lower sign counter, removal. The broker's log
// must show the refused clone.
func TestPasskeysInBrowser(t *testing.T) {
	requireChromium(t)
	node := testenv.Tool(t, "node", "node")

	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("passkey-secret-", 3)}
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	addr := testenv.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	issuer := "http://localhost:" + port
	config := filepath.Join(dir, "bridgekeeper.yaml")
	writeFile(t, config, "issuer: "+issuer+"\nlisten: "+addr+"\ndsn: "+dsn+"\n")
	email, password := "ada@example.com", "correct horse battery staple"
	testenv.CLI(t, env, password+"\n", "user", "create", "--dsn", dsn, "--email", email, "--name", "Ada", "--password-stdin")
	srv := testenv.Serve(t, env, "http://"+addr, "--config", config)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "passkeys.mjs")
	cmd.Dir = "browser"
	cmd.Env = append(os.Environ(), "BK_ISSUER="+issuer, "BK_EMAIL="+email, "BK_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	t.Logf("passkeys in Chromium:\n%s", out)
	if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("passkey browser test failed: %v\nbroker log:\n%s", err, srv.Output())
	}
	if !strings.Contains(srv.Output(), "sign counter went backwards") {
		t.Errorf("the broker did not log the cloned credential:\n%s", srv.Output())
	}
}
