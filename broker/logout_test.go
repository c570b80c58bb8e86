package broker

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
	"github.com/ory/fosite/token/jwt"
)

func TestLogoutWithoutHintAsksFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		br.loginForCode(spaAuth())
		params := url.Values{"client_id": {spaID}, "post_logout_redirect_uri": {spaLogout}, "state": {"st-1"}}

		p := br.get(e.issuer + pathLogout + "?" + params.Encode())
		if p.status != http.StatusOK || !strings.Contains(p.body, `name="confirm" value="yes"`) || !strings.Contains(p.body, userEmail) {
			t.Fatalf("no confirmation page: %d %.500s", p.status, p.body)
		}
		sessionAlive := func() bool {
			q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
			return q.Get("code") != ""
		}
		if !sessionAlive() {
			t.Fatal("the session ended without confirmation")
		}

		confirm := url.Values{"confirm": {"yes"}}
		for k, v := range params {
			confirm[k] = v
		}
		// A cross-site confirmation is not one.
		req, _ := http.NewRequest(http.MethodPost, e.issuer+pathLogout, strings.NewReader(confirm.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := br.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !sessionAlive() {
			t.Fatalf("cross-site confirmation: %d", resp.StatusCode)
		}

		q := redirectParams(t, br.postForm(e.issuer+pathLogout, confirm), spaLogout)
		if q.Get("state") != "st-1" {
			t.Errorf("state %q", q.Get("state"))
		}
		if sessionAlive() {
			t.Fatal("the session survived a confirmed logout")
		}
	})
}

func TestLogoutHintValidation(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return e.keys.SigningKey(), nil }}
	hint := func(iss string, exp time.Time) string {
		tok, _, err := signer.Generate(t.Context(), jwt.MapClaims{"iss": iss, "sub": e.user.ID, "aud": []string{spaID}, "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix()}, &jwt.Headers{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	logout := func(h string) page {
		return e.browser().get(e.issuer + pathLogout + "?" + url.Values{"id_token_hint": {h}, "post_logout_redirect_uri": {spaLogout}}.Encode())
	}
	// Expired is fine for logout (the client id comes from its audience).
	redirectParams(t, logout(hint(e.issuer, time.Now().Add(-24*time.Hour))), spaLogout)
	if p := logout(hint("https://other.example", time.Now().Add(time.Hour))); p.status != http.StatusBadRequest {
		t.Errorf("foreign issuer: %d", p.status)
	}
	if p := logout(hint(e.issuer, time.Now().Add(time.Hour)) + "x"); p.status != http.StatusBadRequest {
		t.Errorf("bad signature: %d", p.status)
	}
}
