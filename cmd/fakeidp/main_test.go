package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the tests run this binary's main as a real subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("FAKEIDP_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FAKEIDP_TEST_MAIN=1")
	return cmd
}

func TestServesUsersFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := command(ctx, "--listen", "127.0.0.1:0", "--users", "../../testdata/upstream/fakeidp-users.yaml")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addrPattern := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrPattern.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		_ = cmd.Process.Kill()
		t.Fatalf("fakeidp did not report its address (%v)", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	client := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + addr
	resp, err := client.Get(base + "/oauth2/default/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || doc["issuer"] != base+"/oauth2/default" {
		t.Errorf("discovery: %v %v", doc, err)
	}
	resp, err = client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Ada Lovelace") || strings.Contains(string(page), "Alice Anderson") {
		t.Errorf("index page does not list the users file's users:\n%s", page)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("fakeidp did not stop cleanly on SIGTERM: %v", err)
	}
}

func TestRefusesBadFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, args := range map[string][]string{
		"public address": {"--listen", "0.0.0.0:0"},
		"missing file":   {"--listen", "127.0.0.1:0", "--users", "/nonexistent/users.yaml"},
	} {
		out, err := command(ctx, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%s: fakeidp started:\n%s", name, out)
		}
	}
}
