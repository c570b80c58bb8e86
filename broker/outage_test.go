package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// With the database gone, a valid client is not told it is invalid: the
// token endpoint answers 503 temporarily_unavailable and the authorization
// endpoint a 503 page (found by the resilience test during a Postgres
// restart: 401 invalid_client and a 400 "invalid sign-in request").
func TestDatabaseOutageIs503(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}
		tr := e.token(url.Values{"grant_type": {"client_credentials"}}, apiID, apiSecret)
		if tr.status != http.StatusServiceUnavailable || tr.Error != "temporarily_unavailable" {
			t.Errorf("client_credentials with the database down: %d %q, want 503 temporarily_unavailable", tr.status, tr.Error)
		}
		resp, err := http.Get(e.authURL(spaAuth()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("authorization request with the database down: %d, want 503", resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); strings.Contains(loc, "error=") {
			t.Errorf("redirected with an error during an outage: %s", loc)
		}
	})
}

// A code exchange whose writes fail on the database (a restart, a lost
// connection) answers 5xx and spends nothing: the same code and verifier
// work once the database does. (fosite deletes the PKCE data while checking
// the request; the resilience test found codes left unredeemable after a
// Postgres restart.) A trigger makes the grant's insert fail, as a database
// going away at that moment would.
func TestFailedGrantWriteKeepsTheCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		restore := failInserts(t, e, "access_tokens")
		if tr := e.exchange(code, ar); tr.status < 500 {
			t.Fatalf("exchange with the grant's write failing: %d %q, want a 5xx", tr.status, tr.Error)
		}
		restore()
		tr := mustOK(t, e.exchange(code, ar))
		if !e.active(tr.AccessToken) || !e.active(tr.RefreshToken) {
			t.Error("the tokens of the retried exchange are not active")
		}
		wantTokenError(t, e.exchange(code, ar), http.StatusBadRequest, "invalid_grant")
	})
}

// A refresh whose writes fail on the database answers 5xx and spends
// nothing: the refresh token is not rotated, and it refreshes once the
// database works (and reusing it afterwards is a replay as ever).
func TestFailedGrantWriteKeepsTheRefreshToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, func(c *Config) { c.RefreshReuseGrace = -1 })
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		restore := failInserts(t, e, "refresh_tokens")
		if tr := e.refresh(first.RefreshToken); tr.status < 500 {
			t.Fatalf("refresh with the grant's write failing: %d %q, want a 5xx", tr.status, tr.Error)
		}
		restore()
		if !e.active(first.RefreshToken) || !e.active(first.AccessToken) {
			t.Fatal("the failed refresh rotated the refresh token or deactivated its access token")
		}
		second := mustOK(t, e.refresh(first.RefreshToken))
		if !e.active(second.RefreshToken) || e.active(first.RefreshToken) {
			t.Error("after the retried refresh: want the new refresh token active and the old one rotated")
		}
		wantTokenError(t, e.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
	})
}

// failInserts makes every insert into table fail, as a database going away
// at that moment would (a trigger; a real failing statement), until the
// returned function is called.
func failInserts(t *testing.T, e *testEnv, table string) (restore func()) {
	t.Helper()
	return storagetest.FailWrites(t, e.store, "INSERT", table)
}

// With the database gone after the client was looked up (it is cached), an
// authorization request that needs the browser session is answered with the
// redirect error RFC 6749 section 4.1.2.1 keeps for this,
// temporarily_unavailable, not server_error; a refresh gets a 503.
func TestOutageAfterClientLookup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		ar := spaAuth()
		tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
		if err := e.store.Close(); err != nil {
			t.Fatal(err)
		}
		q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
		if q.Get("error") != "temporarily_unavailable" || q.Get("state") != testState {
			t.Errorf("prompt=none with the database down: redirect %v, want error=temporarily_unavailable", q)
		}
		r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {spaID}}, "", "")
		if r.status != http.StatusServiceUnavailable || r.Error != "temporarily_unavailable" {
			t.Errorf("refresh with the database down: %d %q, want 503 temporarily_unavailable", r.status, r.Error)
		}
	})
}
