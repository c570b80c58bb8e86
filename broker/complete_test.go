package broker

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestCompleteLoginAs plays a connector that has read the pending login and
// the user itself: the pending login is used up in the grant's
// transaction, yet of concurrent completions exactly one gets a code (and
// a session cookie), another browser gets nothing, and a disabled user's
// attempt uses the pending login up too.
func TestCompleteLoginAs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		var (
			mu      sync.Mutex
			arrived int
			release = make(chan struct{})
		)
		parties := 1 // requests that meet before completing
		var e *testEnv
		e = newTestEnv(t, b, mount("/connector/as", func(w http.ResponseWriter, r *http.Request) {
			id := r.URL.Query().Get("login")
			var p *storage.PendingLogin
			var err error
			if r.URL.Query().Get("foreign") != "" {
				// A buggy caller that skipped the browser check.
				p, err = e.store.GetPendingLogin(r.Context(), hashToken(id))
			} else {
				p, err = e.srv.PendingLogin(r, id)
			}
			if err != nil {
				http.Error(w, "no pending login", http.StatusBadRequest)
				return
			}
			user, err := e.store.GetUser(r.Context(), e.user.ID)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			user.Disabled = r.URL.Query().Get("disabled") != ""
			mu.Lock()
			arrived++
			if arrived == parties {
				close(release)
			}
			mu.Unlock()
			<-release // every party has read the pending login
			e.srv.CompleteLoginAs(w, r, id, p, user, "fake", []string{"fed"})
		}))
		reset := func(n int) {
			mu.Lock()
			defer mu.Unlock()
			arrived, parties, release = 0, n, make(chan struct{})
		}
		start := func(br *browser) string {
			t.Helper()
			return loginID(t, br.get(e.authURL(spaAuth())))
		}

		// Concurrent completions in one browser: one code, one session.
		br := e.browser()
		id := start(br)
		reset(2)
		type result struct {
			status  int
			loc     string
			cookies []*http.Cookie
			err     error
		}
		results := make(chan result, 2)
		for range 2 {
			go func() {
				resp, err := br.c.Get(e.issuer + "/connector/as?login=" + url.QueryEscape(id))
				if err != nil {
					results <- result{err: err}
					return
				}
				resp.Body.Close()
				results <- result{status: resp.StatusCode, loc: resp.Header.Get("Location"), cookies: resp.Cookies()}
			}()
		}
		codes, expired := 0, 0
		for range 2 {
			res := <-results
			if res.err != nil {
				t.Fatal(res.err)
			}
			hasSession := false
			for _, c := range res.cookies {
				hasSession = hasSession || (c.Name == sessionCookie && c.MaxAge > 0)
			}
			switch {
			case res.status == http.StatusSeeOther && strings.HasPrefix(res.loc, spaRedirect) && strings.Contains(res.loc, "code="):
				codes++
				if !hasSession {
					t.Error("the winner got no session cookie")
				}
			case res.status == http.StatusBadRequest:
				expired++
				if hasSession {
					t.Error("the loser got a session cookie")
				}
			default:
				t.Errorf("completion answered %d %q", res.status, res.loc)
			}
		}
		if codes != 1 || expired != 1 {
			t.Errorf("%d codes and %d expired pages, want one each", codes, expired)
		}

		// Another browser cannot complete this browser's login, and does
		// not use it up.
		reset(1)
		br = e.browser()
		id = start(br)
		other := e.browser()
		other.get(e.authURL(spaAuth())) // it has a binding cookie of its own
		if p := other.get(e.issuer + "/connector/as?foreign=1&login=" + url.QueryEscape(id)); p.status != http.StatusBadRequest {
			t.Errorf("foreign browser: %d %q", p.status, p.header.Get("Location"))
		}
		reset(1)
		redirectParams(t, br.get(e.issuer+"/connector/as?login="+url.QueryEscape(id)), spaRedirect)

		// A disabled user is refused, and the pending login is spent.
		reset(1)
		br = e.browser()
		id = start(br)
		if p := br.get(e.issuer + "/connector/as?disabled=1&login=" + url.QueryEscape(id)); p.status != http.StatusForbidden {
			t.Errorf("disabled user: %d", p.status)
		}
		if _, err := e.store.GetPendingLogin(t.Context(), hashToken(id)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("pending login after a refused user: %v", err)
		}
	})
}
