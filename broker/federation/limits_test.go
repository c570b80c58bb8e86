package federation_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// hostileConnector is the hostile test plugin of plugins/internal (built
// with the SDK), as connector "hostile"; it plays its own upstream at
// https://hostile-idp.test.
func hostileConnector(t testing.TB) config.Connector {
	t.Helper()
	return config.Connector{ID: "hostile", Name: "Hostile", Path: pluginPath(t, "hostileconnector"),
		Config: map[string]any{"issuer": "https://hostile-idp.test"}}
}

// TestHostilePluginRepliesBounded: a plugin that answers a login with
// 40 MiB, or with an identity one of whose fields is over its limit, ends
// that login on the "Sign-in failed" page; nothing of the answer is stored
// (no user, no identity link, no connector state), the log names the
// limit, and the same plugin process goes on logging users in. A refresh
// grant whose upstream re-check answers 40 MiB is temporarily_unavailable
// and keeps the stored identity as it was.
func TestHostilePluginRepliesBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newEnv(t, envOptions{backend: b, connectors: func(e *env) []config.Connector {
			return []config.Connector{hostileConnector(t)}
		}, brokerConfig: func(e *env, c *broker.Config) {
			c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
		}})
		ctx := context.Background()
		// back plays the upstream: it sends the browser back with code.
		back := func(br *browser, ar authRequest, code string) page {
			up := e.startUpstream(br, ar, "hostile")
			if up.Host != "hostile-idp.test" {
				t.Fatalf("sent to %s", up)
			}
			return br.get(e.issuer + "/callback/hostile?" + url.Values{"code": {code}, "state": {up.Query().Get("state")}}.Encode())
		}

		for _, tc := range []struct{ code, says string }{
			{"huge", "limit of 1048576 bytes"},
			{"long-subject", "subject is 256 bytes, over the limit of 255"},
			{"long-email", "email is 255 bytes, over the limit of 254"},
			{"long-name", "name is 1025 bytes"},
			{"many-groups", "1001 groups, over the limit of 1000"},
			{"long-group", "groups[1] is 257 bytes"},
			{"long-claims", "claims_json is"},
			{"long-data", "connector_data is 65537 bytes, over the limit of 65536"},
			{"nul-name", "name holds a NUL byte"},
			{"many-amr", "amr has 17 values, over the limit of 16"},
			{"long-amr", "amr[1] is 33 bytes, over the limit of 32"},
			{"odd-amr", "amr[1] holds the byte 0x22, not a token character"},
			{"empty-amr", "amr[1] is empty"},
		} {
			t.Run(tc.code, func(t *testing.T) {
				br := e.browser()
				p := back(br, spaAuth(), tc.code)
				errorPage(t, br, e, p, http.StatusBadGateway, "Signing in with Hostile did not work")
				if !e.logs.has("upstream login failed", tc.says) {
					t.Errorf("no log of the failed login saying %q", tc.says)
				}
				if _, err := e.store.GetIdentity(ctx, "hostile", "sub-"+tc.code); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("identity of the refused answer: %v, want none", err)
				}
			})
		}
		if users, err := e.store.ListUsers(ctx); err != nil || len(users) != 0 {
			t.Errorf("users after the refused answers: %d, %v; want none", len(users), err)
		}

		// A login URL or connector state over its limit: the page says the
		// sign-in failed, and the pending login keeps no connector state.
		for _, tc := range []struct{ hint, says string }{
			{"huge-state", "limit of 1048576 bytes"},
			{"long-state", "connector_state is 8193 bytes, over the limit of 8192"},
			{"long-url", "over the limit of 8192"},
		} {
			t.Run(tc.hint, func(t *testing.T) {
				br := e.browser()
				ar := spaAuth("idp_hint", "hostile", "login_hint", tc.hint)
				p := br.get(e.authURL(ar))
				errorPage(t, br, e, p, http.StatusBadGateway, "Signing in with Hostile did not work")
				if !e.logs.has("start upstream login", tc.says) {
					t.Errorf("no log of the refused login URL saying %q", tc.says)
				}
				var loginID string
				for _, h := range hrefs(p.body) {
					if u, err := url.Parse(h); err == nil && strings.HasSuffix(u.Path, "/login") {
						loginID = u.Query().Get("login")
					}
				}
				sum := sha256.Sum256([]byte(loginID))
				pl, err := e.store.GetPendingLogin(ctx, hex.EncodeToString(sum[:]))
				if err != nil {
					t.Fatalf("pending login %q: %v", loginID, err)
				}
				if len(pl.ConnectorState) != 0 || pl.ConnectorID != "" {
					t.Errorf("the pending login keeps %d bytes of connector state of %q", len(pl.ConnectorState), pl.ConnectorID)
				}
			})
		}

		// The plugin still logs users in, in the same process.
		ar := spaAuth()
		br := e.browser()
		tr := e.exchange(codeFrom(t, back(br, ar, "refresh-huge")), ar)
		checkFederated(t, e.idClaims(tr.IDToken), "hostile")
		if n := e.fed.Plugin("hostile").Restarts(); n != 0 {
			t.Errorf("plugin restarts = %d, want 0", n)
		}
		// Its re-check at the refresh grant answers 40 MiB: the grant is
		// temporarily unavailable, the identity stays as it was.
		if r := e.refresh(tr.RefreshToken); r.status != http.StatusServiceUnavailable || r.Error != "temporarily_unavailable" {
			t.Errorf("refresh with a 40 MiB re-check: %d %q, want 503 temporarily_unavailable", r.status, r.Error)
		}
		link, err := e.store.GetIdentity(ctx, "hostile", "sub-refresh-huge")
		if err != nil {
			t.Fatal(err)
		}
		if data, err := federation.OpenConnectorData(e.fed, link); err != nil || string(data) != "data-refresh-huge" {
			t.Errorf("identity after the refused re-check: connector data %q, %v", data, err)
		}
	})
}

// has reports whether a record with message msg has an attribute whose
// value contains want.
func (s *logSink) has(msg, want string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if r.Message != msg {
			continue
		}
		found := false
		r.Attrs(func(a slog.Attr) bool {
			found = strings.Contains(a.Value.String(), want)
			return !found
		})
		if found {
			return true
		}
	}
	return false
}
