package broker

import (
	"net/http"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// An authorization stores its code, PKCE challenge and OpenID Connect
// session as one row, which serves the exchange and gives up both parts
// with it; a refused exchange still spends the challenge, so a stolen
// code gets one guess.
func TestAuthorizationStoredAsOneRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		count := func(table string) int {
			t.Helper()
			return storagetest.CountRows(t, e.store, table)
		}
		parts := func(code string) (pkce, oidc bool) {
			t.Helper()
			// The newest code is this one: one authorization at a time.
			codes := storagetest.AuthorizeCodes(t, e.store)
			if len(codes) == 0 {
				t.Fatal("no authorization code stored")
			}
			return codes[0].PKCE, codes[0].OIDC
		}

		for _, how := range []string{"after the login form", "with the session (prompt=none)"} {
			var code string
			ar := spaAuth()
			if how == "after the login form" {
				code = br.loginForCode(ar)
			} else {
				ar = spaAuth("prompt", "none")
				code = redirectParams(t, br.get(e.authURL(ar)), spaRedirect).Get("code")
			}
			if pkce, oidc := parts(code); !pkce || !oidc {
				t.Errorf("%s: the code's row carries PKCE %v, OpenID Connect %v; want both", how, pkce, oidc)
			}
			if n, m := count("pkce_requests"), count("oidc_requests"); n != 0 || m != 0 {
				t.Errorf("%s: %d PKCE and %d OpenID Connect rows of their own, want none", how, n, m)
			}
			tr := mustOK(t, e.exchange(code, ar))
			if _, id := e.verifyJWT(tr.IDToken); id["nonce"] != testNonce {
				t.Errorf("%s: ID token nonce %v, want %s (from the OpenID Connect part)", how, id["nonce"], testNonce)
			}
			if pkce, oidc := parts(code); pkce || oidc {
				t.Errorf("%s: after the exchange the code's row still carries PKCE %v, OpenID Connect %v", how, pkce, oidc)
			}
		}

		ar := spaAuth()
		code := redirectParams(t, br.get(e.authURL(ar)), spaRedirect).Get("code")
		wrong := ar
		wrong.verifier = newVerifier()
		wantTokenError(t, e.exchange(code, wrong), http.StatusBadRequest, "invalid_grant")
		if pkce, _ := parts(code); pkce {
			t.Error("a refused exchange left the code's PKCE challenge")
		}
		wantTokenError(t, e.exchange(code, ar), http.StatusBadRequest, "invalid_grant")
	})
}
