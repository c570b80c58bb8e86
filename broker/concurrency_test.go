package broker

import (
	"net/http"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestConcurrentCodeExchange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		const n = 8
		results := make([]tokenResponse, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = e.exchange(code, ar)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.Error != "invalid_grant" && r.Error != "invalid_request":
				t.Errorf("loser got %d %s: %s", r.status, r.Error, r.Description)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent exchanges of one code succeeded, want exactly 1", ok, n)
		}
	})
}

func TestConcurrentRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		const n = 8
		results := make([]tokenResponse, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = e.refresh(tr.RefreshToken)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, r := range results {
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.Error != "invalid_grant" && r.Error != "invalid_request":
				t.Errorf("loser got %d %s: %s", r.status, r.Error, r.Description)
			}
		}
		if ok > 1 {
			t.Fatalf("%d of %d concurrent refreshes of one token succeeded, want at most 1", ok, n)
		}
	})
}
