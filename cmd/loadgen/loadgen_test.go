package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckTargetRefusesRemoteHosts(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8080":     true,
		"http://[::1]:8080":         true,
		"http://localhost:8080":     true,
		"https://127.0.0.2":         true,
		"http://192.0.2.10:8080":    false,
		"http://[2001:db8::1]:8080": false,
		"ftp://127.0.0.1":           false,
		"127.0.0.1:8080":            false,
	} {
		err := checkTarget(target, false)
		if (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", target, err, ok)
		}
	}
	if err := checkTarget("http://192.0.2.10:8080", true); err != nil {
		t.Errorf("--allow-remote: %v", err)
	}
}

func TestFlagsAreBounded(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--target", "http://127.0.0.1:1", "--duration", "11m"},
		{"--target", "http://127.0.0.1:1", "--concurrency", "0"},
		{"--target", "http://127.0.0.1:1", "--scenarios", "password"},
		{"--target", "http://127.0.0.1:1", "--scenarios", "refresh"}, // no client, user or --dsn
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestPercentiles(t *testing.T) {
	r := result{duration: time.Second}
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	r.errors = 10
	if r.percentile(.5) != 50*time.Millisecond || r.percentile(.99) != 99*time.Millisecond || r.percentile(.9) != 90*time.Millisecond {
		t.Errorf("p50 %v p90 %v p99 %v", r.percentile(.5), r.percentile(.9), r.percentile(.99))
	}
	if r.rate() != 110 {
		t.Errorf("rate %v, want 110 (errors count as requests)", r.rate())
	}
}

// A JWKS run over real loopback HTTP counts what the server saw, and
// reports the server's failures as errors.
func TestJWKSRunCountsRequestsAndErrors(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		if served.Add(1)%10 == 0 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--target", srv.URL, "--scenarios", "jwks",
		"--concurrency", "2", "--duration", "300ms"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	fields := strings.Fields(strings.Split(out.String(), "\n")[1])
	if len(fields) < 3 || fields[0] != "jwks" {
		t.Fatalf("report:\n%s", out.String())
	}
	requests, errs := fields[1], fields[2]
	if requests == "0" || errs == "0" || !strings.Contains(out.String(), "JWKS answered 503") {
		t.Errorf("report:\n%s", out.String())
	}
	// Every request the server answered was counted, except those cut
	// off by the end of the run (at most one per worker).
	var n int64
	if _, err := fmt.Sscan(requests, &n); err != nil || n > served.Load() || n < served.Load()-2 {
		t.Errorf("reported %s requests, server saw %d", requests, served.Load())
	}
}

// With --password-grant and --token-url (a peer such as Dex), each refresh
// worker starts its own user's chain with the password grant, as a
// confidential client, and then redeems only its own latest token.
func TestPasswordGrantChainsPerWorker(t *testing.T) {
	var (
		mu     sync.Mutex
		latest = map[string]string{} // user -> their latest refresh token
		owner  = map[string]string{} // refresh token -> user
		users  = map[string]bool{}
		n      int
		bad    []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if id, secret, ok := r.BasicAuth(); r.URL.Path != "/dex/token" || !ok || id != "peer" || secret != "s3cret" {
			bad = append(bad, fmt.Sprintf("%s without the client's Basic authentication", r.URL.Path))
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		r.ParseForm()
		var user string
		switch r.PostForm.Get("grant_type") {
		case "password":
			user = r.PostForm.Get("username")
			if r.PostForm.Get("password") != "pw" || users[user] {
				bad = append(bad, "password grant for "+user)
			}
			users[user] = true
		case "refresh_token":
			user = owner[r.PostForm.Get("refresh_token")]
			if user == "" || latest[user] != r.PostForm.Get("refresh_token") {
				bad = append(bad, "refresh with a stale or unknown token")
			}
		}
		n++
		rt := fmt.Sprintf("rt-%d", n)
		latest[user], owner[rt] = rt, user
		fmt.Fprintf(w, `{"access_token":"at","id_token":"it","refresh_token":%q,"token_type":"bearer"}`, rt)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--target", srv.URL + "/dex", "--token-url", srv.URL + "/dex/token",
		"--scenarios", "refresh", "--password-grant", "--client-id", "peer", "--client-secret", "s3cret",
		"--email", "user%d@example.com", "--password", "pw", "--concurrency", "3", "--duration", "200ms"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 || len(users) != 3 || !users["user0@example.com"] || !users["user2@example.com"] || n < 6 {
		t.Errorf("users %v, %d requests, wrong: %q\n%s", users, n, bad, out.String())
	}
	if _, err := parseFlags([]string{"--target", srv.URL, "--scenarios", "refresh", "--password-grant",
		"--dsn", "sqlite:x.db"}, &bytes.Buffer{}); err == nil {
		t.Error("--password-grant with --dsn (Bridgekeeper has no password grant) accepted")
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	cpu, err := parseStatCPU("4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 37 0 0 20 0 9 0 100 0 0\n")
	if err != nil || cpu != 1870*time.Millisecond {
		t.Errorf("got %v, %v; want 1.87s (150 + 37 ticks)", cpu, err)
	}
	for _, bad := range []string{"", "4242 no parens S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 900 0 0 0 -5 37 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// --server-pid reports the server's CPU time per request over the
// measured run: a server that burns a fixed CPU time per request is
// reported at about that cost.
func TestServerCPUPerRequest(t *testing.T) {
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	const perRequest = 2 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for start := time.Now(); time.Since(start) < perRequest; { // busy: CPU time, not sleep
		}
		w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--target", srv.URL, "--scenarios", "jwks", "--concurrency", "1",
		"--duration", "500ms", "--server-pid", strconv.Itoa(os.Getpid()), "--format", "markdown"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	cells := strings.Split(strings.Split(out.String(), "\n")[2], "|")
	if len(cells) < 11 {
		t.Fatalf("report:\n%s", out.String())
	}
	us, err := strconv.Atoi(strings.TrimSpace(cells[9]))
	// The test process is the server and the client: at least the
	// server's busy loop, at most a few times it (10 ms ticks).
	if err != nil || us < 1500 || us > 20000 {
		t.Errorf("server CPU per request %q µs, want about %v:\n%s", cells[9], perRequest, out.String())
	}
	if _, err := parseFlags([]string{"--target", srv.URL, "--server-pid", "999999999"}, &bytes.Buffer{}); err == nil {
		t.Error("--server-pid of no process accepted")
	}
}
