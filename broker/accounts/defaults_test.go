package accounts_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestDefaultLimits backs docs/accounts.md's table of default brute-force
// limits: reset requests 5 per address and 20 per client IP an hour (over
// HTTP); logins 10 per (account, client IP) and 100 per client IP in 15
// minutes, and per account a delay after 5 attempts of 1 s, 2 s, 4 s …
// up to 5 minutes for addresses that have tried it, none for one that has
// not.
func TestDefaultLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		ctx := context.Background()

		// Reset requests, per address.
		for i := range 5 {
			wantStatus(t, "reset "+strconv.Itoa(i), h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)
		}
		wantStatus(t, "sixth reset of one address", h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusTooManyRequests)
		// Per client IP: 20 an hour, the 6 above (the refused one too) included.
		refused := 0
		for i := range 20 {
			r := h.submit("/reset", "", url.Values{"email": {"someone" + strconv.Itoa(i) + "@example.test"}})
			if r.status == http.StatusTooManyRequests {
				refused = i
				break
			}
		}
		if refused != 14 {
			t.Fatalf("reset requests for other addresses from one IP refused from the %dth on, want the 15th (the IP's 21st)", refused+1)
		}
		h.clock.Advance(time.Hour)
		wantStatus(t, "a reset an hour later", h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)

		lim := h.svc.Limiter()
		allow := func(account, ip string) (bool, time.Duration) {
			t.Helper()
			ok, retry, err := lim.Allow(ctx, accounts.ActionLogin, account, ip)
			if err != nil {
				t.Fatal(err)
			}
			return ok, retry
		}

		// Logins: the account delay across addresses, from three addresses
		// in turn: 5 free attempts, then 1 s, 2 s, 4 s … 5 min.
		const account = "delayed@example.test"
		ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
		var waits []int
		for i := 0; len(waits) < 11 && i < 200; i++ {
			ip := ips[i%len(ips)]
			ok, retry := allow(account, ip)
			if ok {
				continue
			}
			waits = append(waits, int(retry.Round(time.Second)/time.Second))
			h.clock.Advance(retry)
			if ok, _ := allow(account, ip); !ok {
				t.Fatalf("refused again after waiting %v", retry)
			}
		}
		if want := []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}; !slices.Equal(waits, want) {
			t.Fatalf("the account delay waited %v s, want %v", waits, want)
		}
		// An address that has not tried the account is not delayed.
		if ok, retry := allow(account, "198.51.100.7"); !ok {
			t.Fatalf("a fresh address is delayed %v", retry)
		}

		// Per (account, IP): 10 attempts in 15 minutes (each waiting out
		// the account delay first: a request refused by the delay counts
		// as an attempt too).
		h.clock.Advance(24 * time.Hour)
		const other = "limited@example.test"
		for i := range 10 {
			if i >= 5 {
				h.clock.Advance(time.Duration(1<<(i-5)) * time.Second)
			}
			if ok, retry := allow(other, "203.0.113.9"); !ok {
				t.Fatalf("attempt %d, after the account delay: refused for %v", i+1, retry)
			}
		}
		h.clock.Advance(time.Minute)
		if ok, retry := allow(other, "203.0.113.9"); ok || retry < 5*time.Minute {
			t.Fatalf("the 11th attempt from one address: ok %v retry %v, want refused for the rest of the 15 minutes", ok, retry)
		}
		if ok, retry := allow(other, "203.0.113.10"); !ok {
			t.Fatalf("another address, after one address's 11 attempts: refused for %v", retry)
		}

		// Per client IP: 100 in 15 minutes across accounts.
		h.clock.Advance(24 * time.Hour)
		for i := range 100 {
			if ok, retry := allow("acct"+strconv.Itoa(i)+"@example.test", "203.0.113.50"); !ok {
				t.Fatalf("attempt %d from one IP refused (%v)", i+1, retry)
			}
		}
		if ok, _ := allow("acct-final@example.test", "203.0.113.50"); ok {
			t.Fatal("the 101st attempt from one IP in 15 minutes was allowed")
		}
	})
}
