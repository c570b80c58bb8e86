package main

import (
	"strings"
	"testing"
)

// TestClientUpdateRequireMFA: client update --require-mfa turns the
// setting on and --require-mfa=false off, get and list show it, and
// updating one setting keeps the other (--require-dpop stays as it was).
func TestClientUpdateRequireMFA(t *testing.T) {
	dsn := createSPAWithDPoP(t)
	get := func() string {
		t.Helper()
		out, _, err := run(t, "", "client", "get", "--dsn", dsn, "spa")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := get(); !strings.Contains(out, `"require_mfa": false`) {
		t.Fatalf("get after create: %s", out)
	}
	out, _, err := run(t, "", "client", "update", "--dsn", dsn, "spa", "--require-mfa")
	if err != nil || !strings.Contains(out, "MFA required") {
		t.Fatalf("update --require-mfa: %v\n%s", err, out)
	}
	if out := get(); !strings.Contains(out, `"require_mfa": true`) || !strings.Contains(out, `"require_dpop": true`) {
		t.Fatalf("get after update --require-mfa: %s", out)
	}
	out, _, err = run(t, "", "client", "list", "--dsn", dsn)
	if err != nil || !strings.Contains(out, "MFA") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if row := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); len(row) < 5 || row[3] != "required" || row[4] != "required" {
		t.Fatalf("list row %q: want DPOP and MFA required", row)
	}
	if _, _, err := run(t, "", "client", "update", "--dsn", dsn, "spa", "--require-mfa=false"); err != nil {
		t.Fatal(err)
	}
	if out := get(); !strings.Contains(out, `"require_mfa": false`) || !strings.Contains(out, `"require_dpop": true`) {
		t.Fatalf("get after update --require-mfa=false: %s", out)
	}
	if _, _, err := run(t, "", "client", "update", "--dsn", dsn, "nobody", "--require-mfa"); err == nil || !strings.Contains(err.Error(), `no client "nobody"`) {
		t.Fatalf("update of an unknown client: %v", err)
	}
}
