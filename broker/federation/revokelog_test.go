package federation_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestRefreshRevocationIsWarned backs docs/ops.md: when a refresh grant
// ends because the upstream no longer accepts the user, the broker logs a
// WARN naming the connector, the user and the reason.
func TestRefreshRevocationIsWarned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) { refreshRevocationIsWarned(t, b) })
}

func refreshRevocationIsWarned(t *testing.T, b storagetest.Backend) {
	e := newEnv(t, envOptions{backend: b, brokerConfig: func(e *env, c *broker.Config) {
		c.RefreshCheck = e.fed.Refresh // as cmd/bridgekeeper serve does
	}})
	claims, tr := e.login(e.browser(), "okta", "1002")
	if tr.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	if err := e.idp.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if got := e.refresh(tr.RefreshToken); got.status != http.StatusBadRequest || got.Error != "invalid_grant" {
		t.Fatalf("refresh of a user disabled upstream: %d %s", got.status, got.Error)
	}
	e.logs.mu.Lock()
	defer e.logs.mu.Unlock()
	for _, r := range e.logs.records {
		if r.Level != slog.LevelWarn || r.Message != "upstream revoked the identity: its grants end" {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		if attrs["connector"] != "okta" || attrs["user"] != claims["sub"] || attrs["reason"] != "the upstream refused the identity" {
			t.Errorf("WARN attributes %v", attrs)
		}
		return
	}
	t.Error("no WARN for the grant revoked upstream")
}
