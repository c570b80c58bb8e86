package broker

import (
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestGrantObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) {
		c.GrantObserver = func(grantType, outcome string) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, grantType+" "+outcome)
		}
	})
	mustOK(t, e.token(url.Values{"grant_type": {"client_credentials"}}, apiID, apiSecret))
	e.token(url.Values{"grant_type": {"client_credentials"}}, apiID, "wrong")
	e.token(url.Values{"grant_type": {"password"}}, apiID, apiSecret)
	e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spaID}}, "", "")
	mu.Lock()
	defer mu.Unlock()
	want := []string{"client_credentials ok", "client_credentials invalid_client", "password unsupported_grant_type", "refresh_token invalid_grant"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("observed %q, want %q", seen, want)
	}
}
