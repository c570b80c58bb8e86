package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// TestQuickStartsWorkAsTyped runs the README's "Running the broker" and
// `bridgekeeper --help`'s quick start as a newcomer types them: in bash,
// in an empty directory, with the built binary put on PATH the way the
// README says. Only the port differs (8080 may be taken).
func TestQuickStartsWorkAsTyped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("the README makes the client secret with openssl, which is not installed")
	}
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	t.Setenv("BRIDGEKEEPER_DSN", "")
	t.Setenv("BRIDGEKEEPER_CONFIG", "")
	bin := filepath.Dir(testenv.Binary(t, "./cmd/bridgekeeper"))
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Running the broker\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Running the broker" section`)
	}
	section = section[start:]
	section = section[:strings.Index(section, "\n### Commands")]
	if !strings.Contains(section, `export PATH="$PWD/bin:$PATH"`) {
		t.Error("README's Running the broker does not say how to put bin/bridgekeeper on PATH")
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 {
		t.Fatalf("README's Running the broker has %d sh blocks; want the serve command and the registrations", len(blocks))
	}

	var help bytes.Buffer
	root := newRootCommand(nil, &help, &help)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var helpLines []string
	quickStart, _, _ := strings.Cut(help.String(), "\nUsage:")
	for line := range strings.SplitSeq(quickStart, "\n") {
		if strings.HasPrefix(line, "  bridgekeeper ") || strings.HasPrefix(line, "  echo ") || strings.HasPrefix(line, "      --") {
			helpLines = append(helpLines, strings.TrimSpace(line))
		}
	}
	if len(helpLines) == 0 || !strings.HasPrefix(helpLines[0], "bridgekeeper serve ") {
		t.Fatalf("--help has no quick start beginning with serve:\n%s", help.String())
	}
	helpServe, helpRest := helpLines[0], strings.Join(helpLines[1:], "\n")

	for _, tc := range []struct{ name, serve, register string }{
		{"README", blocks[0][1], blocks[1][1]},
		{"help", helpServe, helpRest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			addr := testenv.FreeAddr(t)
			serve := exec.Command("bash", "-c", "exec "+strings.ReplaceAll(strings.TrimSpace(tc.serve), "127.0.0.1:8080", addr))
			serve.Dir, serve.Env = dir, env
			var serveLog bytes.Buffer
			serve.Stdout, serve.Stderr = &serveLog, &serveLog
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			stopped := false
			defer func() {
				if !stopped {
					_ = serve.Process.Kill()
					_ = serve.Wait()
				}
			}()
			if status, _ := getStatus(t, "http://"+addr+"/.well-known/openid-configuration"); status != http.StatusOK {
				t.Fatalf("discovery: %d\n%s", status, serveLog.String())
			}

			sh := exec.Command("bash", "-euo", "pipefail", "-c", tc.register)
			sh.Dir, sh.Env = dir, env
			var stdout, stderr bytes.Buffer
			sh.Stdout, sh.Stderr = &stdout, &stderr
			if err := sh.Run(); err != nil {
				t.Fatalf("the registration commands failed as typed: %v\n%s%s", err, stdout.String(), stderr.String())
			}
			if strings.Contains(stderr.String(), "warning") {
				t.Errorf("the commands as typed print a warning:\n%s", stderr.String())
			}
			check := func(want string, args ...string) {
				t.Helper()
				c := exec.Command(filepath.Join(bin, "bridgekeeper"), args...)
				c.Dir, c.Env = dir, env
				out, err := c.CombinedOutput()
				if err != nil || !strings.Contains(string(out), want) {
					t.Errorf("bridgekeeper %v: %v; want %q in\n%s", args, err, want, out)
				}
			}
			check(`"post_logout_redirect_uris": [`+"\n"+`    "http://127.0.0.1:5173/"`, "client", "get", "--dsn", "sqlite:data/bk.db", "spa")
			if tc.name == "README" {
				check(`"client_credentials"`, "client", "get", "--dsn", "sqlite:data/bk.db", "backend")
			}
			check("@example.com", "user", "list", "--dsn", "sqlite:data/bk.db")

			// Ctrl-C stops the broker cleanly.
			if err := serve.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- serve.Wait() }()
			select {
			case err := <-done:
				stopped = true
				if err != nil {
					t.Errorf("serve after SIGINT: %v\n%s", err, serveLog.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop on SIGINT")
			}
		})
	}
}
