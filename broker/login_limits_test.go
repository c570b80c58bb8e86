package broker

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// limitClock is the limiter's clock, moved by the tests.
type limitClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *limitClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *limitClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// browserFrom is a browser whose connections come from the loopback
// address ip (any of 127.0.0.0/8), so the broker sees another client IP.
func (e *testEnv) browserFrom(ip string) *browser {
	b := e.browser()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	jar, _ := cookiejar.New(nil)
	b.c.Jar = jar
	b.c.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

// A stranger's wrong passwords from one address do not lock the owner
// out: the owner, from an address that has not failed, logs in.
func TestStrangerCannotLockTheOwnerOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := &limitClock{now: time.Now()}
		var logs syncbuf.Buffer
		e := newTestEnv(t, b, func(c *Config) {
			c.LoginLimiter = accounts.NewLimiter(c.Store.(accounts.LimiterStore), accounts.Limits{}, clk.Now, slog.New(slog.NewTextHandler(&logs, nil)))
		})

		stranger := e.browserFrom("127.0.0.2")
		p := stranger.get(e.authURL(spaAuth()))
		limited := 0
		for i := range 30 {
			r := stranger.submitLogin(p, userEmail, "wrong guess "+strconv.Itoa(i))
			switch r.status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("guess %d: %d", i, r.status)
			}
		}
		if limited == 0 {
			t.Fatal("30 wrong passwords from one address were never limited")
		}
		// One request a minute keeps the stranger going, and the account
		// would stay locked under a per-account lock.
		for range 3 {
			clk.Advance(time.Minute)
			stranger.submitLogin(p, userEmail, "one more guess")
		}

		owner := e.browserFrom("127.0.0.3")
		q := redirectParams(t, owner.submitLogin(owner.get(e.authURL(spaAuth())), userEmail, userPassword), spaRedirect)
		if q.Get("code") == "" {
			t.Fatalf("the owner got no code: %v", q)
		}

		out := logs.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "user=u-alice") {
			t.Errorf("no WARN naming the account's id when the limit tripped:\n%s", out)
		}
		if strings.Contains(out, userEmail) || strings.Contains(out, "wrong guess") {
			t.Errorf("the log holds the e-mail address or a password:\n%s", out)
		}
	})
}

// Guessing from many addresses is still slowed down: once an address has
// failed on the account, its attempts wait a delay that grows with the
// account's failures, whichever address they come from.
func TestLoginDelayGrowsAcrossAddresses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := &limitClock{now: time.Now()}
		limits := accounts.Limits{Login: accounts.LoginLimits{
			AccountDelay: accounts.Backoff{Free: 3, Base: time.Second, Max: time.Minute},
		}}
		e := newTestEnv(t, b, func(c *Config) {
			c.LoginLimiter = accounts.NewLimiter(c.Store.(accounts.LimiterStore), limits, clk.Now, nil)
		})

		// An unknown address is slowed down alike: the delay tells nothing
		// about which accounts exist.
		for n, account := range []string{userEmail, "nobody@example.com"} {
			var guessers []*browser
			var pages []page
			for i := range 3 {
				g := e.browserFrom("127.0.0." + strconv.Itoa(10+10*n+i))
				guessers = append(guessers, g)
				pages = append(pages, g.get(e.authURL(spaAuth())))
			}
			guess := func(i int) page {
				return guessers[i%3].submitLogin(pages[i%3], account, "guess "+strconv.Itoa(i))
			}
			// Three free failures, one from each address.
			for i := range 3 {
				if r := guess(i); r.status != http.StatusUnauthorized {
					t.Fatalf("%s: free guess %d: %d", account, i, r.status)
				}
			}
			var waits []int
			for i := 3; i < 11; i++ {
				r := guess(i)
				if r.status != http.StatusTooManyRequests {
					t.Fatalf("%s: guess %d: %d, want 429 (a delay)", account, i, r.status)
				}
				secs, err := strconv.Atoi(r.header.Get("Retry-After"))
				if err != nil || !strings.Contains(r.body, "Try again in "+strconv.Itoa(secs)+" second") {
					t.Fatalf("%s: guess %d: Retry-After %q, body %.400s", account, i, r.header.Get("Retry-After"), r.body)
				}
				waits = append(waits, secs)
				clk.Advance(time.Duration(secs) * time.Second)
				if r := guess(i); r.status != http.StatusUnauthorized {
					t.Fatalf("%s: guess %d after waiting %ds: %d", account, i, secs, r.status)
				}
			}
			if want := []int{1, 2, 4, 8, 16, 32, 60, 60}; !slices.Equal(waits, want) {
				t.Fatalf("%s: waits %v, want %v", account, waits, want)
			}
		}
	})
}

// A NUL byte or invalid UTF-8 in the login form's fields is a 400 with the
// form and an error, not a 500 and not a counted password attempt.
func TestLoginFormRefusesUnusableCharacters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		lim := &succeedingLimiter{}
		e := newTestEnv(t, b, func(c *Config) { c.LoginLimiter = lim })
		br := e.browser()
		p := br.get(e.authURL(spaAuth()))
		for _, bad := range []string{"\x00", "\xff\xfe"} {
			for _, tc := range []struct{ email, pw string }{
				{"alice" + bad + "@example.com", userPassword},
				{userEmail, "correct horse" + bad + " battery staple"},
			} {
				r := br.submitLogin(p, tc.email, tc.pw)
				if r.status != http.StatusBadRequest || !strings.Contains(r.body, `role="alert"`) ||
					!strings.Contains(r.body, "be used here") || !strings.Contains(r.body, `name="login"`) {
					t.Fatalf("email %q password %q: %d\n%.600s", tc.email, tc.pw, r.status, r.body)
				}
			}
		}
		for _, bad := range []string{"\x00", "\xff\xfe"} {
			r := br.postForm(e.issuer+pathLogin, url.Values{"login": {loginID(t, p) + bad}, "email": {userEmail}, "password": {userPassword}})
			if r.status >= 500 || r.status < 400 {
				t.Fatalf("login id with %q: %d\n%.600s", bad, r.status, r.body)
			}
		}
		if len(lim.calls) != 0 {
			t.Errorf("refused forms counted as password attempts: %q", lim.calls)
		}
		redirectParams(t, br.submitLogin(p, userEmail, userPassword), spaRedirect)
	})
}

type fakeLimiter struct {
	mu    sync.Mutex
	calls []string
	deny  bool
}

func (l *fakeLimiter) Allow(_ context.Context, action, account, ip string) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, action+" "+account+" "+ip)
	return !l.deny, 30 * time.Second, nil
}

func TestLoginLimiter(t *testing.T) {
	lim := &fakeLimiter{deny: true}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.LoginLimiter = lim })
	br := e.browser()
	p := br.get(e.authURL(spaAuth()))
	r := br.submitLogin(p, "Alice@Example.com", userPassword)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" {
		t.Fatalf("limited login: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if len(lim.calls) != 1 || lim.calls[0] != "login alice@example.com 127.0.0.1" {
		t.Errorf("limiter calls %q", lim.calls)
	}
}
