package testenv

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"
)

// Process is a long-running command started for a test (Start).
type Process struct {
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	exited chan struct{}
}

// Command is exec.Command(path, args...) with env added to the test's
// environment.
func Command(path string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// Start starts cmd, its standard output and error going to Output. When the
// test ends it is interrupted (killed if it has not exited 10 s later),
// and its output is logged if the test failed.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{cmd: cmd, out: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(cmd.Args, " "), p.out.String())
		}
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is what the process wrote so far (standard output and error).
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// readyTimeout is how long a process has to become ready.
const readyTimeout = 60 * time.Second

// WaitHTTP polls url until it answers 200. It fails the test, with the
// process's output, when the process exits first or 60 s pass.
func (p *Process) WaitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("%s exited early:\n%s", p.cmd.Path, p.Output())
		}
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer in time:\n%s", url, p.Output())
}

// listening matches the start-up line of each server the tests run:
// "listening on ADDR" (Node, Python), slog's "msg=listening addr=ADDR"
// (example-api) or "bridgekeeper is serving … listen=ADDR".
var listening = regexp.MustCompile(`(?m)(?:listening on |msg=listening addr=|bridgekeeper is serving.* listen=)(127\.0\.0\.1:\d+)`)

// WaitListening waits until the process announces its address (a server
// started on 127.0.0.1:0) and returns its base URL, http://ADDR. It fails
// the test, with the process's output, when the process exits first or
// 60 s pass.
func (p *Process) WaitListening(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if m := listening.FindStringSubmatch(p.Output()); m != nil {
			return "http://" + m[1]
		}
		if p.Exited() {
			t.Fatalf("%s exited before listening:\n%s", strings.Join(p.cmd.Args, " "), p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start listening in %v:\n%s", strings.Join(p.cmd.Args, " "), readyTimeout, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreeAddr returns a 127.0.0.1 address whose port is free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
