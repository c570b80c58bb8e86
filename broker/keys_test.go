package broker

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestKeyRotation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		ar := spaAuth()
		before := mustOK(t, e.exchange(br.loginForCode(ar), ar))
		oldKid, _ := e.verifyJWT(before.AccessToken)

		if err := e.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		after := mustOK(t, e.refresh(before.RefreshToken))
		newKid, _ := e.verifyJWT(after.AccessToken)
		if oldKid.KeyID == newKid.KeyID {
			t.Fatal("tokens are still signed by the retired key")
		}
		// After another rotation, tokens signed by the now retired key still
		// verify where the broker checks them itself (introspection,
		// userinfo, id_token_hint): by kid, not only the current key.
		if err := e.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !e.active(after.AccessToken) {
			t.Error("an access token signed by the retired key is no longer active")
		}
		req, _ := http.NewRequest(http.MethodGet, e.issuer+pathUserinfo, nil)
		req.Header.Set("Authorization", "Bearer "+after.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("userinfo with a token of the retired key: %d", resp.StatusCode)
		}
		redirectParams(t, br.get(e.issuer+pathLogout+"?"+url.Values{"id_token_hint": {before.IDToken}, "post_logout_redirect_uri": {spaLogout}}.Encode()), spaLogout)
	})
}

func TestES256Keys(t *testing.T) {
	e := newTestEnvAlg(t, storagetest.Backend{Name: "sqlite"}, "ES256", nil)
	ar := spaAuth()
	br := e.browser()
	tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))
	for _, tok := range []string{tr.IDToken, tr.AccessToken} {
		if h, _ := e.verifyJWT(tok); h.Algorithm != "ES256" {
			t.Errorf("alg %s, want ES256", h.Algorithm)
		}
	}
	if !e.active(tr.AccessToken) {
		t.Error("ES256 access token inactive")
	}
	redirectParams(t, br.get(e.issuer+pathLogout+"?"+url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaLogout}}.Encode()), spaLogout)
	resp, err := http.Get(e.issuer + pathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || len(doc.Algs) != 1 || doc.Algs[0] != "ES256" {
		t.Errorf("discovery algs %v %v", doc.Algs, err)
	}
}
