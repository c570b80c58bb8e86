package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/wasm/internal/oidctest"
)

// httpTransport is the host Transport: net/http.
type httpTransport struct{ c *http.Client }

func (t httpTransport) Do(ctx context.Context, req Request) (Response, error) {
	r, err := http.NewRequestWithContext(ctx, req.Method, req.URL, strings.NewReader(req.Body))
	if err != nil {
		return Response{}, err
	}
	for k, v := range req.Header {
		r.Header.Set(k, v)
	}
	resp, err := t.c.Do(r)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	h := map[string]string{}
	for _, k := range []string{"DPoP-Nonce", "WWW-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			h[strings.ToLower(k)] = v
		}
	}
	return Response{Status: resp.StatusCode, Header: h, Body: body}, err
}

// stdVerifier is the host SignatureVerifier: crypto/rsa and crypto/ecdsa.
type stdVerifier struct{}

func (stdVerifier) Verify(_ context.Context, alg string, jwk map[string]any, signed, sig []byte) error {
	dec := func(k string) *big.Int {
		b, _ := base64.RawURLEncoding.DecodeString(str(jwk, k))
		return new(big.Int).SetBytes(b)
	}
	sum := sha256.Sum256(signed)
	switch alg {
	case "RS256":
		pub := &rsa.PublicKey{N: dec("n"), E: int(dec("e").Int64())}
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig)
	case "ES256":
		pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: dec("x"), Y: dec("y")}
		if len(sig) != 64 || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	}
	return errors.New("unsupported alg " + alg)
}

// fakeClock is a Clock the test moves by hand. Every call to After is
// reported on timers so a test can wait until a timer is armed.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeTimer
	timers  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now(), timers: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeTimer{c.now.Add(d), ch})
	c.mu.Unlock()
	select {
	case c.timers <- d:
	default:
	}
	c.fire()
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	c.fire()
}

func (c *fakeClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// mutexLocker is a Locker shared by several clients, like Web Locks.
type mutexLocker struct{ mu sync.Mutex }

func (l *mutexLocker) WithLock(ctx context.Context, _ string, fn func(context.Context) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fn(ctx)
}

// bus is a Broadcaster connecting several clients, like BroadcastChannel:
// a message reaches every client but the sender.
type bus struct {
	mu      sync.Mutex
	clients []*Client
}

type busEnd struct {
	b    *bus
	self **Client
}

func (e busEnd) Broadcast(msg string) {
	e.b.mu.Lock()
	clients := append([]*Client(nil), e.b.clients...)
	e.b.mu.Unlock()
	for _, c := range clients {
		if c != *e.self {
			c.HandleBroadcast(context.Background(), msg)
		}
	}
}

const (
	testClient   = "demo-spa"
	testRedirect = "http://127.0.0.1:5173/callback"
	testLogout   = "http://127.0.0.1:5173/"
	testUser     = "ada@example.com"
)

type env struct {
	t      testing.TB
	issuer *oidctest.Server
	url    string
	clock  *fakeClock
	store  *MemoryStore
	events chan Event
}

func newEnv(t testing.TB, alg string) *env {
	t.Helper()
	return newEnvWith(t, oidctest.Config{Alg: alg})
}

// newEnvWith starts a test issuer configured by cfg (its client, URIs,
// user, token lifetime and clock are the test's).
func newEnvWith(t testing.TB, cfg oidctest.Config) *env {
	t.Helper()
	clock := newFakeClock()
	cfg.ClientID, cfg.AutoLogin, cfg.Now = testClient, testUser, clock.Now
	cfg.RedirectURIs, cfg.PostLogoutRedirectURIs = []string{testRedirect}, []string{testLogout}
	cfg.AccessTokenTTL = 5 * time.Minute
	srv, err := oidctest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	srv.SetIssuer(ts.URL)
	return &env{t: t, issuer: srv, url: ts.URL, clock: clock, store: NewMemoryStore(), events: make(chan Event, 100)}
}

// deps names the random source: the js/wasm build has no default (the tests
// also run there: GOOS=js GOARCH=wasm go test -exec go_js_wasm_exec).
func (e *env) deps() Deps {
	return Deps{Transport: httpTransport{http.DefaultClient}, Verifier: stdVerifier{}, Clock: e.clock, Store: e.store, Random: rand.Reader}
}

func (e *env) config() Config {
	return Config{
		Issuer: e.url, ClientID: testClient, RedirectURI: testRedirect, PostLogoutRedirectURI: testLogout,
		OnEvent: func(ev Event) {
			select {
			case e.events <- ev:
			default:
			}
		},
	}
}

func (e *env) client(deps Deps) *Client {
	e.t.Helper()
	c, err := New(e.config(), deps)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// authorize follows an authorize URL at the test issuer (which logs the
// user in by itself) and returns the callback URL it redirects to.
func (e *env) authorize(authURL string) string {
	e.t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// login runs a whole login on c.
func (e *env) login(c *Client) *View {
	e.t.Helper()
	ctx := context.Background()
	u, err := c.AuthorizeURL(ctx, AuthOptions{AppState: "/profile"})
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := c.HandleCallback(ctx, e.authorize(u))
	if err != nil {
		e.t.Fatalf("callback: %v", err)
	}
	return v
}

// waitEvent waits for an event of the given type, failing on a deadline.
func (e *env) waitEvent(typ string) Event {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.Type == typ {
				return ev
			}
		case <-deadline:
			e.t.Fatalf("no %s event", typ)
		}
	}
}
