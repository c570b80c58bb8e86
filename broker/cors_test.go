package broker

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestCORSPerClient backs SECURITY.md and `client create --help`: an
// origin registered for one client gets no CORS grant on another client's
// token, revocation or userinfo requests (so a page there cannot read
// them). A preflight carries no client, so it is answered for every
// registered origin; the actual answer decides.
func TestCORSPerClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		const otherOrigin = "https://other.example"
		if err := e.store.CreateClient(context.Background(), &storage.Client{
			ID: "other", Name: "Other", Public: true, TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{"https://other.example/cb"}, AllowedOrigins: []string{otherOrigin},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: strings.Fields(allUserScopes),
		}); err != nil {
			t.Fatal(err)
		}
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))

		acao := func(method, path string, form url.Values, origin string, header ...string) string {
			t.Helper()
			var resp *http.Response
			if method == http.MethodPost {
				resp, _ = e.post(path, form, "", "", append([]string{"Origin", origin}, header...)...)
			} else {
				req, _ := http.NewRequest(method, e.issuer+path, nil)
				req.Header.Set("Origin", origin)
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
				resp = r
			}
			return resp.Header.Get("Access-Control-Allow-Origin")
		}
		refresh := func(client string) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}, "client_id": {client}}
		}
		revoke := func(client string) url.Values {
			return url.Values{"token": {"not-a-token"}, "client_id": {client}}
		}
		for _, c := range []struct {
			name, got, want string
		}{
			{"token: spa's origin, spa", acao(http.MethodPost, pathToken, refresh(spaID), spaOrigin), spaOrigin},
			{"token: other's origin, spa", acao(http.MethodPost, pathToken, refresh(spaID), otherOrigin), ""},
			{"token: spa's origin, other", acao(http.MethodPost, pathToken, refresh("other"), spaOrigin), ""},
			{"token: spa's origin, other by Basic", acao(http.MethodPost, pathToken, url.Values{"grant_type": {"client_credentials"}}, spaOrigin, "Authorization", "Basic b3RoZXI6eA=="), ""},
			{"revoke: spa's origin, spa", acao(http.MethodPost, pathRevoke, revoke(spaID), spaOrigin), spaOrigin},
			{"revoke: other's origin, spa", acao(http.MethodPost, pathRevoke, revoke(spaID), otherOrigin), ""},
			{"userinfo: spa's origin, spa's token", acao(http.MethodGet, pathUserinfo, nil, spaOrigin, "Authorization", "Bearer "+tr.AccessToken), spaOrigin},
			{"userinfo: other's origin, spa's token", acao(http.MethodGet, pathUserinfo, nil, otherOrigin, "Authorization", "Bearer "+tr.AccessToken), ""},
			{"userinfo POST: other's origin, spa's token", acao(http.MethodPost, pathUserinfo, url.Values{"access_token": {tr.AccessToken}}, otherOrigin), ""},
			{"userinfo: unknown origin", acao(http.MethodGet, pathUserinfo, nil, "https://evil.example", "Authorization", "Bearer "+tr.AccessToken), ""},
			// An answer that names no client (a bad token) may be read by
			// any registered origin: it tells nothing about a client.
			{"userinfo: bad token, other's origin", acao(http.MethodGet, pathUserinfo, nil, otherOrigin, "Authorization", "Bearer nope"), otherOrigin},
			{"discovery: other's origin", acao(http.MethodGet, pathDiscovery, nil, otherOrigin), otherOrigin},
			{"preflight token: other's origin", acao(http.MethodOptions, pathToken, nil, otherOrigin, "Access-Control-Request-Method", "POST"), otherOrigin},
		} {
			if c.got != c.want {
				t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", c.name, c.got, c.want)
			}
		}
		// The spa's own token still works from its origin.
		resp, body := e.post(pathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {spaID}}, "", "", "Origin", spaOrigin)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin {
			t.Fatalf("refresh from the spa's origin: %d %q %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), body)
		}
	})
}
