// Package testenv runs Bridgekeeper for tests the way an operator does: it
// builds the module's commands once per test process (Binary, CLI), starts
// long-running processes that stop when the test ends and waits until they
// answer (Start, Process), and checks for the tools a test needs (Require,
// Tool): missing ones skip the test, saying why, and fail it under
// CI=true, where .ci/run installs them. It imports nothing of the broker,
// so every package's tests may use it (plugins' and the connector
// binaries' too); a real broker in the test process is its subpackage
// brokerenv's.
//
// A package that builds binaries calls Main from its TestMain, so that the
// binaries are removed after the run:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// builds holds the binaries built in this test process.
var builds struct {
	mu   sync.Mutex
	dir  string
	done map[string]func() (string, error) // package → its build, once
}

// Main runs the tests of m, removes the binaries Binary built, and exits
// with the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	os.Exit(code)
}

// Binary returns the path of the command of package pkg, a path relative
// to the module's root ("./cmd/bridgekeeper", "./plugins/internal/testconnector"),
// built once per test process (concurrent callers wait for the one build).
// The binary is named after the package's last element. A failed build
// fails the test. Do not change or remove the file: copy it (CopyBinary).
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.done == nil {
		builds.done = map[string]func() (string, error){}
	}
	build, ok := builds.done[pkg]
	if !ok {
		build = sync.OnceValues(func() (string, error) { return buildPackage(pkg) })
		builds.done[pkg] = build
	}
	builds.mu.Unlock()
	p, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// CopyBinary is Binary copied into a directory of the test's own, for a
// test that removes or replaces the file.
func CopyBinary(t testing.TB, pkg string) string {
	t.Helper()
	src := Binary(t, pkg)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// BuildReplacing builds the command of package pkg (as Binary names it)
// with some of its files replaced: replace maps a file's path, relative
// to the module's root, to the path of the file to compile in its place
// (go build -overlay), so a test builds source it holds (a snippet of the
// docs, say) as a package of the module without writing into the tree.
// The binary is built for this test alone, in its own directory.
func BuildReplacing(t testing.TB, pkg string, replace map[string]string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	abs := map[string]string{}
	for file, with := range replace {
		if abs[filepath.Join(root, file)], err = filepath.Abs(with); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	overlay, err := json.Marshal(map[string]any{"Replace": abs})
	if err != nil {
		t.Fatal(err)
	}
	overlayPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-overlay", overlayPath, "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func buildPackage(pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	builds.mu.Lock()
	if builds.dir == "" {
		builds.dir, err = os.MkdirTemp("", "bk-test-bin-")
	}
	dir := builds.dir
	builds.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("binaries directory: %w", err)
	}
	out := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// ModuleRoot is the directory of the go.mod above the working directory
// (a package's test runs in the package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// CLI runs the bridgekeeper command with env (added to the test's
// environment) and stdin, and returns its standard output; it fails the
// test when the command fails.
func CLI(t testing.TB, env []string, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := CLIResult(t, env, stdin, args...)
	if err != nil {
		t.Fatalf("bridgekeeper %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// Serve starts `bridgekeeper serve` with args (after "serve") and env, and
// waits until the discovery document under base (the issuer, or a
// replica's own address) answers; the process stops when the test ends.
func Serve(t testing.TB, env []string, base string, args ...string) *Process {
	t.Helper()
	p := Start(t, Command(Binary(t, "./cmd/bridgekeeper"), env, append([]string{"serve"}, args...)...))
	p.WaitHTTP(t, strings.TrimRight(base, "/")+"/.well-known/openid-configuration")
	return p
}

// CLIResult is CLI for a command that may fail: its standard output and
// error, and how it ended. It gives up after a minute.
func CLIResult(t testing.TB, env []string, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary(t, "./cmd/bridgekeeper"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}
