package broker

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestRefreshNarrowsScope: a scope parameter on a refresh request narrows
// the tokens it issues (RFC 6749 section 6): the access token, its
// introspection, the response and the ID token carry only the asked
// scopes, and a scope outside the grant is invalid_scope. The rotated
// refresh token keeps the grant's scope ("identical to that of the refresh
// token included by the client in the request"), so a later refresh without
// scope gets the whole grant again.
func TestRefreshNarrowsScope(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		refresh := func(rt, scope string) tokenResponse {
			return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}, "scope": {scope}}, "", "")
		}

		narrow := mustOK(t, refresh(first.RefreshToken, "email openid"))
		if narrow.Scope != "email openid" && narrow.Scope != "openid email" {
			t.Errorf("response scope %q, want openid email", narrow.Scope)
		}
		if _, at := e.verifyJWT(narrow.AccessToken); at["scope"] != "openid email" {
			t.Errorf("access token scope %v, want openid email", at["scope"])
		}
		if m := e.introspect(narrow.AccessToken); m["active"] != true || m["scope"] != "openid email" {
			t.Errorf("introspection of the narrowed access token: %v", m)
		}
		if _, id := e.verifyJWT(narrow.IDToken); id["email"] != userEmail || id["name"] != nil {
			t.Errorf("ID token of a refresh narrowed to openid email: %v", id)
		}
		// Without openid: no ID token.
		noID := mustOK(t, refresh(narrow.RefreshToken, "offline_access"))
		if noID.IDToken != "" || noID.Scope != "offline_access" {
			t.Errorf("refresh narrowed to offline_access: scope %q, ID token %t", noID.Scope, noID.IDToken != "")
		}

		// A scope outside the grant: invalid_scope, nothing spent.
		for _, scope := range []string{"openid admin", "openid read"} {
			wantTokenError(t, refresh(noID.RefreshToken, scope), http.StatusBadRequest, "invalid_scope")
		}
		if !e.active(noID.RefreshToken) || !e.active(noID.AccessToken) {
			t.Fatal("a refused scope spent the refresh token")
		}

		// The rotated refresh token still carries the grant: without scope,
		// the whole grant again.
		full := mustOK(t, e.refresh(noID.RefreshToken))
		if full.Scope != allUserScopes || full.IDToken == "" {
			t.Errorf("refresh without scope after narrowing: scope %q, ID token %t", full.Scope, full.IDToken != "")
		}
		if m := e.introspect(full.AccessToken); m["scope"] != allUserScopes {
			t.Errorf("introspection after a refresh without scope: %v", m)
		}

		// A grant of fewer scopes cannot be widened to what the client may
		// ask for at the authorization endpoint.
		small := spaAuth("scope", "openid offline_access")
		st := mustOK(t, e.exchange(e.browser().loginForCode(small), small))
		wantTokenError(t, refresh(st.RefreshToken, "openid profile"), http.StatusBadRequest, "invalid_scope")
		if got := mustOK(t, refresh(st.RefreshToken, "openid offline_access")); got.Scope != "openid offline_access" {
			t.Errorf("refresh asking for the whole grant: scope %q", got.Scope)
		}
	})
}
