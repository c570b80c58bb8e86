package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI set, as .ci/run does),
// where every tool the tests need is installed.
func InCI() bool { return os.Getenv("CI") != "" }

// Require skips the test when ok is false, saying that what is missing,
// and fails it in CI, where .ci/run installs everything.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("%s is missing in CI (.ci/run should have installed it)", what)
	}
	t.Skipf("skipping: %s is missing (CI installs it)", what)
}

// Tool returns the path of the program name on PATH; without it the test
// is skipped (failed in CI) with what, which says how to install it.
func Tool(t testing.TB, name, what string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, what)
	return p
}

// FileExists reports whether path exists (an npm package, a built file),
// for Require.
func FileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
