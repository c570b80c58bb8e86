package broker

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const (
	rsSPA     = "rs-spa"
	rsService = "rs-service"
	rsSecret  = "rs-service-secret-0123456789"
	demoAPI   = "http://127.0.0.1:9090"
	reportAPI = "https://reports.example/api"
)

// addResourceClients adds a public client and a confidential one that may
// ask for demoAPI and reportAPI, with demoAPI as the default.
func (e *testEnv) addResourceClients() {
	t := e.t
	sec, err := secret.Parse(testSecretB64)
	if err != nil {
		t.Fatal(err)
	}
	hasher := password.ClientSecretHasher{Key: sec.Derive(secret.PurposeClientSecret)}
	hash, err := hasher.Hash(t.Context(), []byte(rsSecret))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*storage.Client{
		{
			ID: rsSPA, Name: "Resource SPA", Public: true, TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{spaRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"},
			ResponseTypes: []string{"code"}, Scopes: strings.Fields(allUserScopes),
			Audiences: []string{demoAPI, reportAPI}, DefaultAudiences: []string{demoAPI},
		},
		{
			ID: rsService, Name: "Resource service", SecretHash: hash, TokenEndpointAuthMethod: "client_secret_basic",
			GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"}, Scopes: []string{"read"},
			Audiences: []string{demoAPI, reportAPI},
		},
	} {
		if err := e.store.CreateClient(t.Context(), c); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
}

func rsAuth(resources ...string) authRequest {
	ar := spaAuth("client_id", rsSPA)
	for _, r := range resources {
		ar.params.Add("resource", r)
	}
	return ar
}

func (e *testEnv) rsRefresh(rt string, resources ...string) tokenResponse {
	return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {rsSPA}, "resource": resources}, "", "")
}

func (e *testEnv) audience(accessToken string) []string {
	e.t.Helper()
	_, claims := e.verifyJWT(accessToken)
	var aud []string
	switch v := claims["aud"].(type) {
	case string:
		aud = []string{v}
	case []any:
		for _, a := range v {
			s, _ := a.(string)
			aud = append(aud, s)
		}
	}
	return aud
}

func wantAudience(t *testing.T, e *testEnv, accessToken string, want ...string) {
	t.Helper()
	if got := e.audience(accessToken); !slices.Equal(got, want) {
		t.Errorf("aud %q, want %q", got, want)
	}
}

func TestResourceIndicators(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		e.addResourceClients()

		t.Run("default audience", func(t *testing.T) {
			ar := rsAuth()
			tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
			wantAudience(t, e, tr.AccessToken, demoAPI)
		})

		t.Run("requested resources, refresh narrows", func(t *testing.T) {
			ar := rsAuth(reportAPI, demoAPI)
			tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
			wantAudience(t, e, tr.AccessToken, reportAPI, demoAPI)

			tr = mustOK(t, e.rsRefresh(tr.RefreshToken, reportAPI))
			wantAudience(t, e, tr.AccessToken, reportAPI)
			// The stored access token (introspection's view) has the narrowed audience too.
			sig := tr.AccessToken[strings.LastIndexByte(tr.AccessToken, '.')+1:]
			if stored, err := e.store.TokenStore(storage.TokenStoreConfig{}).GetAccessTokenSession(t.Context(), sig, newSession()); err != nil {
				t.Fatal(err)
			} else if got := stored.GetGrantedAudience(); !slices.Equal(got, []string{reportAPI}) {
				t.Errorf("stored access token audience %q, want [%s]", got, reportAPI)
			}
			// The grant keeps both: a later refresh without resource gets both again.
			tr = mustOK(t, e.rsRefresh(tr.RefreshToken))
			wantAudience(t, e, tr.AccessToken, reportAPI, demoAPI)
			wantTokenError(t, e.rsRefresh(tr.RefreshToken, "https://elsewhere.example"), http.StatusBadRequest, "invalid_target")
			// The refused request did not use up the refresh token.
			mustOK(t, e.rsRefresh(tr.RefreshToken, demoAPI))
		})

		t.Run("refresh cannot widen", func(t *testing.T) {
			ar := rsAuth(reportAPI)
			tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
			wantAudience(t, e, tr.AccessToken, reportAPI)
			// demoAPI is one of the client's audiences, but not of this grant.
			wantTokenError(t, e.rsRefresh(tr.RefreshToken, demoAPI), http.StatusBadRequest, "invalid_target")
			tr2 := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {rsSPA}, "audience": {demoAPI}}, "", "")
			wantTokenError(t, tr2, http.StatusBadRequest, "invalid_target")
		})

		t.Run("disallowed resource on authorize", func(t *testing.T) {
			for _, res := range []string{"https://elsewhere.example", "not-a-uri", demoAPI + "#frag"} {
				p := e.browser().get(e.authURL(rsAuth(res)))
				q := redirectParams(t, p, spaRedirect)
				if q.Get("error") != "invalid_target" || q.Get("state") != testState {
					t.Errorf("resource %q: redirect %v, want invalid_target with state", res, q)
				}
			}
			ar := spaAuth("client_id", rsSPA, "audience", "https://elsewhere.example")
			if q := redirectParams(t, e.browser().get(e.authURL(ar)), spaRedirect); q.Get("error") != "invalid_target" {
				t.Errorf("audience parameter: redirect %v, want invalid_target", q)
			}
		})

		t.Run("client_credentials", func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "resource": {reportAPI}}
			tr := mustOK(t, e.token(form, rsService, rsSecret))
			wantAudience(t, e, tr.AccessToken, reportAPI)
			form["resource"] = []string{"https://elsewhere.example"}
			wantTokenError(t, e.token(form, rsService, rsSecret), http.StatusBadRequest, "invalid_target")
			form.Del("resource")
			form.Set("audience", "https://elsewhere.example")
			wantTokenError(t, e.token(form, rsService, rsSecret), http.StatusBadRequest, "invalid_target")
			// No resource and no default audience: the client itself.
			form.Del("audience")
			tr = mustOK(t, e.token(form, rsService, rsSecret))
			wantAudience(t, e, tr.AccessToken, rsService)
		})
	})
}
