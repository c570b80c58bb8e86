package broker

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// commitCutter is a TCP proxy in front of Postgres that, when armed, breaks
// the connection that sends the next COMMIT: before Postgres sees it (the
// transaction is rolled back) or after Postgres has received it but before
// its answer reaches the broker (the transaction commits; the broker sees a
// lost connection) — what a Postgres restart or a network failure does to
// a commit in flight.
type commitCutter struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	armed string // "", "before" or "after"
	fired chan struct{}
}

// commitMsg is the simple-query message pgdriver sends to commit.
var commitMsg = append([]byte{'Q', 0, 0, 0, 11}, "COMMIT\x00"...)

func newCommitCutter(t *testing.T, target string) *commitCutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &commitCutter{t: t, ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go c.serve()
	return c
}

func (c *commitCutter) serve() {
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", c.target)
		if err != nil {
			client.Close()
			continue
		}
		go c.relay(client, server)
	}
}

// arm makes the cutter break the next COMMIT (when is "before" or
// "after"); the returned channel is closed once it did.
func (c *commitCutter) arm(when string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.fired = when, make(chan struct{})
	return c.fired
}

func (c *commitCutter) relay(client, server net.Conn) {
	var mute sync.Mutex // held while the server's answers are not relayed
	cut := func() {
		client.Close()
		server.Close()
	}
	go func() { // server to client
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			mute.Lock()
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
			mute.Unlock()
			if err != nil {
				cut()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			c.mu.Lock()
			when, fired := c.armed, c.fired
			hit := when != "" && bytes.Contains(chunk, commitMsg)
			if hit {
				c.armed = ""
			}
			c.mu.Unlock()
			switch {
			case hit && when == "before":
				cut()
				close(fired)
				return
			case hit && when == "after":
				mute.Lock() // Postgres answers; the broker never hears it
				_, _ = server.Write(chunk)
				time.Sleep(300 * time.Millisecond)
				cut()
				mute.Unlock()
				close(fired)
				return
			}
			if _, werr := server.Write(chunk); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if err != io.EOF {
				cut()
			}
			server.Close()
			return
		}
	}
}

// A grant whose commit is lost on the way to Postgres spends nothing: the
// code and the refresh token stay redeemable. A grant whose commit reached
// Postgres but whose answer was lost (the connection broke right after) is
// answered with its tokens, which work, rather than with an error that
// leaves the client with a spent code (found by the resilience test: a code
// exchange failing with 500 during a Postgres restart consumed the code).
func TestLostCommitKeepsGrantsRedeemable(t *testing.T) {
	if os.Getenv(storagetest.PostgresEnv) == "" {
		t.Skipf("needs Postgres: set $%s", storagetest.PostgresEnv)
	}
	b := storagetest.Backend{Name: storage.DialectPostgres}
	_, dsn := b.Open(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cutter := newCommitCutter(t, u.Host)
	u.Host = cutter.ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := storage.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newTestEnvOn(t, b, store, "", nil)

	// untilAnswered retries a request a lost connection in the pool may
	// fail once more.
	untilAnswered := func(do func() tokenResponse) tokenResponse {
		var tr tokenResponse
		for range 3 {
			if tr = do(); tr.status < 500 {
				break
			}
		}
		return tr
	}
	// cut runs do with the next commit broken, and checks the cutter fired.
	cut := func(when string, do func() tokenResponse) tokenResponse {
		t.Helper()
		fired := cutter.arm(when)
		tr := do()
		select {
		case <-fired:
		case <-time.After(10 * time.Second):
			t.Fatalf("no commit was cut (%s)", when)
		}
		return tr
	}

	t.Run("code, commit lost before Postgres", func(t *testing.T) {
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		if tr := cut("before", func() tokenResponse { return e.exchange(code, ar) }); tr.status < 500 {
			t.Fatalf("exchange whose commit was lost: %d %q, want a 5xx", tr.status, tr.Error)
		}
		tr := mustOK(t, untilAnswered(func() tokenResponse { return e.exchange(code, ar) }))
		if !e.active(tr.AccessToken) || !e.active(tr.RefreshToken) {
			t.Error("the retried exchange's tokens are not active")
		}
	})
	t.Run("code, answer to the commit lost", func(t *testing.T) {
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		tr := cut("after", func() tokenResponse { return e.exchange(code, ar) })
		if tr.status != http.StatusOK {
			t.Fatalf("exchange that committed, its answer lost: %d %q %q, want 200 with the tokens (the code is spent)", tr.status, tr.Error, tr.Description)
		}
		if !e.active(tr.AccessToken) || !e.active(tr.RefreshToken) {
			t.Error("the tokens of the exchange that committed are not active")
		}
		wantTokenError(t, untilAnswered(func() tokenResponse { return e.exchange(code, ar) }), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("refresh, commit lost before Postgres", func(t *testing.T) {
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		if tr := cut("before", func() tokenResponse { return e.refresh(first.RefreshToken) }); tr.status < 500 {
			t.Fatalf("refresh whose commit was lost: %d %q, want a 5xx", tr.status, tr.Error)
		}
		tr := mustOK(t, untilAnswered(func() tokenResponse { return e.refresh(first.RefreshToken) }))
		if !e.active(tr.RefreshToken) || e.active(first.RefreshToken) {
			t.Error("after the retried refresh: want the new refresh token active and the old one rotated")
		}
	})
	t.Run("refresh, answer to the commit lost", func(t *testing.T) {
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		tr := cut("after", func() tokenResponse { return e.refresh(first.RefreshToken) })
		if tr.status != http.StatusOK {
			t.Fatalf("refresh that committed, its answer lost: %d %q %q, want 200 with the tokens", tr.status, tr.Error, tr.Description)
		}
		if !e.active(tr.RefreshToken) || !e.active(tr.AccessToken) {
			t.Error("the tokens of the refresh that committed are not active")
		}
		mustOK(t, untilAnswered(func() tokenResponse { return e.refresh(tr.RefreshToken) }))
	})
}
