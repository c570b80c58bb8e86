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

// TestRedirectURIMatching backs SECURITY.md (RFC 9700 §2.1, §4.1): a
// redirect_uri matches a registered one byte for byte; only a public
// (native) client's http URI on a loopback IP literal matches any port
// (RFC 8252 §7.3). Every refused request gets the broker's error page,
// never a redirect to the URI it named.
func TestRedirectURIMatching(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ctx := context.Background()
		for _, c := range []*storage.Client{
			// a public client with an https loopback URI: no port rule
			{ID: "native-https", Public: true, TokenEndpointAuthMethod: "none", RedirectURIs: []string{"https://127.0.0.1:8443/cb"}},
			// confidential clients: no port rule, whatever they registered
			{ID: "conf-https", SecretHash: []byte("x"), RedirectURIs: []string{"https://127.0.0.1:8443/cb"}},
			{ID: "conf-http", SecretHash: []byte("x"), RedirectURIs: []string{"http://127.0.0.1:7777/cb"}},
			// a public client on localhost: no port rule (RFC 8252 §8.3)
			{ID: "native-localhost", Public: true, TokenEndpointAuthMethod: "none", RedirectURIs: []string{"http://localhost:7777/cb"}},
			// a public client on [::1] with a query
			{ID: "native-v6", Public: true, TokenEndpointAuthMethod: "none", RedirectURIs: []string{"http://[::1]/cb?app=1"}},
		} {
			c.Name, c.GrantTypes, c.ResponseTypes, c.Scopes = c.ID, []string{"authorization_code"}, []string{"code"}, []string{"openid"}
			if err := e.store.CreateClient(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		auth := func(client, redirect string) authRequest {
			return spaAuth("client_id", client, "redirect_uri", redirect, "scope", "openid")
		}
		refused := map[string]authRequest{
			"https registered, http requested":                auth("conf-https", "http://127.0.0.1:9/cb"),
			"https registered, other port (public)":           auth("native-https", "https://127.0.0.1:9/cb"),
			"http registered, http requested (public, https)": auth("native-https", "http://127.0.0.1:9/cb"),
			"confidential client, other port":                 auth("conf-http", "http://127.0.0.1:7778/cb"),
			"localhost, other port":                           auth("native-localhost", "http://localhost:7778/cb"),
			"userinfo":                                        auth(spaID, "http://evil@127.0.0.1:9999/callback"),
			"userinfo, other port":                            auth(spaID, "http://evil@127.0.0.1:1234/callback"),
			"userinfo, empty":                                 auth(spaID, "http://@127.0.0.1:9999/callback"),
			"percent-encoded path":                            auth(spaID, "http://127.0.0.1:9999/%63allback"),
			"percent-encoded path, other port":                auth(spaID, "http://127.0.0.1:1234/%63allback"),
			"added query":                                     auth(spaID, "http://127.0.0.1:1234/callback?x=1"),
			"trailing slash":                                  auth(spaID, "http://127.0.0.1:1234/callback/"),
			"other loopback IP":                               auth(spaID, "http://127.0.0.2:9999/callback"),
			"IPv6 for IPv4":                                   auth(spaID, "http://[::1]:9999/callback"),
			"localhost for IP":                                auth(spaID, "http://localhost:9999/callback"),
			"upper-case scheme":                               auth(spaID, "HTTP://127.0.0.1:9999/callback"),
			"v6 query changed":                                auth("native-v6", "http://[::1]:5000/cb?app=2"),
			"bad port":                                        auth(spaID, "http://127.0.0.1:99999/callback"),
			"port zero":                                       auth(spaID, "http://127.0.0.1:0/callback"),
			"empty port":                                      auth(spaID, "http://127.0.0.1:/callback"),
			"fragment":                                        auth(spaID, "http://127.0.0.1:1234/callback#x"),
		}
		// Refused later by fosite (an unknown scope): still no redirect.
		withScope := auth(spaID, "http://evil@127.0.0.1:9999/callback")
		withScope.params.Set("scope", "openid nosuchscope")
		refused["userinfo, bad scope"] = withScope
		for name, ar := range refused {
			for _, prompt := range []string{"", "none"} {
				if prompt != "" {
					ar.params.Set("prompt", prompt)
				}
				p := e.browser().get(e.authURL(ar))
				if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.body, "Invalid sign-in request") {
					t.Errorf("%s (prompt=%q): %d Location %q, want 400 and the error page: %.300s", name, prompt, p.status, p.header.Get("Location"), p.body)
				}
			}
		}

		accepted := map[string]authRequest{
			"exact":                auth(spaID, spaRedirect),
			"loopback, other port": auth(spaID, "http://127.0.0.1:1234/callback"),
			"loopback, no port":    auth(spaID, "http://127.0.0.1/callback"),
			"v6, other port":       auth("native-v6", "http://[::1]:5000/cb?app=1"),
			"https exact (public)": auth("native-https", "https://127.0.0.1:8443/cb"),
			"localhost exact":      auth("native-localhost", "http://localhost:7777/cb"),
			"confidential exact":   auth("conf-http", "http://127.0.0.1:7777/cb"),
		}
		for name, ar := range accepted {
			p := e.browser().get(e.authURL(ar))
			if p.status != http.StatusOK || !strings.Contains(p.body, `name="login"`) {
				t.Errorf("%s: %d, want the login page: %.300s", name, p.status, p.body)
			}
		}

		// The code goes to the port asked for, and the token request must
		// name that same URI, byte for byte.
		ar := auth(spaID, "http://127.0.0.1:1234/callback")
		ar.params.Set("scope", allUserScopes)
		code := e.browser().loginForCode(ar)
		other := ar
		other.params = url.Values{}
		for k, v := range ar.params {
			other.params[k] = v
		}
		other.params.Set("redirect_uri", spaRedirect)
		wantTokenError(t, e.exchange(code, other), http.StatusBadRequest, "invalid_grant")
		ar = auth(spaID, "http://127.0.0.1:1234/callback")
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))

		// post_logout_redirect_uri: byte for byte, no port exception (the
		// SPA is a public client), no userinfo; an error page, no redirect.
		for _, uri := range []string{
			"http://127.0.0.1:1234/logged-out",
			"http://evil@127.0.0.1:9999/logged-out",
			"http://127.0.0.1:9999/%6Cogged-out",
			"http://127.0.0.1:9999/logged-out?x=1",
		} {
			q := url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {uri}}
			if p := e.browser().get(e.issuer + pathLogout + "?" + q.Encode()); p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
				t.Errorf("post_logout_redirect_uri %s: %d %q, want the error page", uri, p.status, p.header.Get("Location"))
			}
		}
		q := url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaLogout}}
		redirectParams(t, e.browser().get(e.issuer+pathLogout+"?"+q.Encode()), spaLogout)
	})
}
