package upstreamtime

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fakeNow is a clock the test moves by hand.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time          { return f.t }
func (f *fakeNow) advance(d time.Duration) { f.t = f.t.Add(d) }

func TestOverlappingRequestsCountOnce(t *testing.T) {
	_, c := Start(context.Background())
	f := &fakeNow{t: time.Unix(1000, 0)}
	c.now = f.now

	c.begin() // A starts
	f.advance(10 * time.Millisecond)
	c.begin() // B starts while A runs
	f.advance(5 * time.Millisecond)
	c.end() // B ends
	f.advance(5 * time.Millisecond)
	if got, want := c.Total(), 20*time.Millisecond; got != want {
		t.Errorf("Total while A is in flight = %v, want %v", got, want)
	}
	c.end()                           // A ends
	f.advance(100 * time.Millisecond) // idle: not counted
	c.begin()
	f.advance(3 * time.Millisecond)
	c.end()
	if got, want := c.Total(), 23*time.Millisecond; got != want {
		t.Errorf("Total = %v, want %v (two busy spans of 20 and 3 ms)", got, want)
	}
}

func TestTransportTimesUntilTheBodyIsRead(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release // the body's end comes later than the headers
		io.WriteString(w, "done")
	}))
	defer srv.Close()
	client := &http.Client{Transport: Transport(nil)}

	ctx, c := Start(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if c.inFlightNow() != 1 {
		t.Fatal("the request stopped counting when its headers arrived")
	}
	close(release)
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "done" {
		t.Fatalf("body %q, %v", body, err)
	}
	if c.inFlightNow() != 0 {
		t.Fatal("the request still counts after its body was read to the end")
	}
	resp.Body.Close() // a second end must not count again
	total := c.Total()
	if total <= 0 {
		t.Fatalf("Total = %v after a request", total)
	}
	if again := c.Total(); again != total {
		t.Errorf("Total grew from %v to %v with nothing in flight", total, again)
	}
}

func TestTransportEndsOnErrorsAndIgnoresUntimedRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	client := &http.Client{Transport: Transport(nil)}

	ctx, c := Start(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("a request to a closed port succeeded")
	}
	if c.inFlightNow() != 0 {
		t.Error("a failed request still counts as in flight")
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	req, _ = http.NewRequest(http.MethodGet, srv.URL, nil) // no Clock
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("a request without a Clock: %v", err)
	}
	resp.Body.Close()
	if FromContext(req.Context()) != nil {
		t.Error("a context without a Clock has one")
	}
}

func (c *Clock) inFlightNow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}
