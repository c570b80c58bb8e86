package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestClientRequireDPoP: client create --require-dpop stores it, list and
// get show it, client update turns it off and on; update without a flag
// changes nothing and says so.
func TestClientRequireDPoP(t *testing.T) {
	dsn := createSPAWithDPoP(t)
	out, _, err := run(t, "", "client", "get", "--dsn", dsn, "spa")
	if err != nil || !strings.Contains(out, `"require_dpop": true`) {
		t.Fatalf("get after create: %v\n%s", err, out)
	}
	if out, _, err = run(t, "", "client", "list", "--dsn", dsn); err != nil || !strings.Contains(out, "DPOP") || !strings.Contains(out, "required") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, _, err := run(t, "", "client", "update", "--dsn", dsn, "spa", "--require-dpop=false"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ = run(t, "", "client", "get", "--dsn", dsn, "spa"); !strings.Contains(out, `"require_dpop": false`) {
		t.Fatalf("get after update: %s", out)
	}
	if _, _, err := run(t, "", "client", "update", "--dsn", dsn, "spa"); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Fatalf("update without a flag: %v", err)
	}
	if _, _, err := run(t, "", "client", "update", "--dsn", dsn, "nobody", "--require-dpop"); err == nil || !strings.Contains(err.Error(), `no client "nobody"`) {
		t.Fatalf("update of an unknown client: %v", err)
	}
}

// createSPAWithDPoP registers the public client "spa" with --require-dpop
// in a new SQLite database and returns its DSN.
func createSPAWithDPoP(t *testing.T) string {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	if _, _, err := run(t, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public",
		"--redirect-uri", "http://127.0.0.1:5173/cb", "--require-dpop"); err != nil {
		t.Fatal(err)
	}
	return dsn
}
