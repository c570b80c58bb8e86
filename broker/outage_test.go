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
