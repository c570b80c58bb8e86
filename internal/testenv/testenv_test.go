package testenv_test

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBinaryIsBuiltOnce: two calls return the same file, built by the
// first (the second does not rebuild it).
func TestBinaryIsBuiltOnce(t *testing.T) {
	first := testenv.Binary(t, "./internal/testenv/testdata/hello")
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second := testenv.Binary(t, "./internal/testenv/testdata/hello")
	after, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	if first != second || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("built twice: %s (%v), %s (%v)", first, before.ModTime(), second, after.ModTime())
	}
	if cp := testenv.CopyBinary(t, "./internal/testenv/testdata/hello"); cp == first {
		t.Errorf("CopyBinary returned the shared file %s", cp)
	}
}

// TestProcessStopsWithTheTest: a started process announces its address,
// and is interrupted when its test ends.
func TestProcessStopsWithTheTest(t *testing.T) {
	var p *testenv.Process
	t.Run("run", func(t *testing.T) {
		p = testenv.Start(t, testenv.Command(testenv.Binary(t, "./internal/testenv/testdata/hello"), nil))
		if got := p.WaitListening(t); got != "http://127.0.0.1:4321" {
			t.Errorf("WaitListening = %q", got)
		}
		if p.Exited() {
			t.Error("exited while its test runs")
		}
	})
	if !p.Exited() || !strings.Contains(p.Output(), "stopped") {
		t.Errorf("not interrupted at the end of its test: exited %v, output %q", p.Exited(), p.Output())
	}
}

// TestRequire: a missing tool skips the test, saying what is missing,
// and fails it under CI. The helper test runs in a child process of this
// test binary, with and without CI.
func TestRequire(t *testing.T) {
	if os.Getenv("TESTENV_REQUIRE_HELPER") == "1" {
		testenv.Require(t, true, "a tool that is there")
		testenv.Require(t, false, "the frobnicator (apt-get install frobnicator)")
		t.Log("ran past a missing tool")
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequire$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_REQUIRE_HELPER=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		switch {
		case strings.Contains(string(out), "ran past a missing tool"):
			t.Errorf("CI=%q: the test went on without the tool:\n%s", ci, out)
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP") ||
			!strings.Contains(string(out), "skipping: the frobnicator (apt-get install frobnicator) is missing")):
			t.Errorf("CI unset: want a skip that names the tool, got %v:\n%s", err, out)
		case ci != "" && (err == nil || !strings.Contains(string(out), "--- FAIL") ||
			!strings.Contains(string(out), "the frobnicator (apt-get install frobnicator) is missing in CI")):
			t.Errorf("CI=%q: want a failure that names the tool, got %v:\n%s", ci, err, out)
		}
	}
}

// TestServe: the bridgekeeper binary, set up with CLI, serves the issuer
// once Serve returns, and stops at the end of its test.
func TestServe(t *testing.T) {
	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("testenv-secret-", 3)}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	testenv.CLI(t, env, "", "migrate", "--dsn", dsn)
	if _, _, err := testenv.CLIResult(t, env, "", "no-such-command"); err == nil {
		t.Error("CLIResult: an unknown command did not fail")
	}
	addr := testenv.FreeAddr(t)
	issuer := "http://" + addr
	var p *testenv.Process
	t.Run("serve", func(t *testing.T) {
		p = testenv.Serve(t, env, issuer, "--issuer", issuer, "--listen", addr, "--dsn", dsn)
		res, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Issuer string }
		err = json.NewDecoder(res.Body).Decode(&doc)
		res.Body.Close()
		if err != nil || doc.Issuer != issuer {
			t.Errorf("discovery: issuer %q, %v", doc.Issuer, err)
		}
	})
	if !p.Exited() {
		t.Error("the broker still runs after its test ended")
	}
}
