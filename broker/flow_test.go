package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestCodeFlowWithPKCE(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		ar := spaAuth()
		code := br.loginForCode(ar)
		tr := mustOK(t, e.exchange(code, ar))
		if tr.RefreshToken == "" || tr.IDToken == "" || !strings.EqualFold(tr.TokenType, "bearer") {
			t.Fatalf("incomplete token response: %+v", tr)
		}
		if tr.header.Get("Cache-Control") != "no-store" {
			t.Errorf("token response Cache-Control %q", tr.header.Get("Cache-Control"))
		}

		// ID token: verified against the served JWKS.
		h, id := e.verifyJWT(tr.IDToken)
		if h.Algorithm != "RS256" {
			t.Errorf("ID token alg %s", h.Algorithm)
		}
		if id["sub"] != e.user.ID || id["nonce"] != testNonce || id["idp"] != "local" || id["email"] != userEmail || id["name"] != "Alice Liddell" {
			t.Errorf("ID token claims: %v", id)
		}
		if aud, _ := id["aud"].([]any); !slices.Contains(aud, any(spaID)) {
			t.Errorf("ID token aud %v", id["aud"])
		}
		if amr, _ := id["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
			t.Errorf("amr %v", id["amr"])
		}
		if at, ok := id["auth_time"].(float64); !ok || time.Since(time.Unix(int64(at), 0)) > time.Minute {
			t.Errorf("auth_time %v", id["auth_time"])
		}
		sum := sha256.Sum256([]byte(tr.AccessToken))
		if id["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) {
			t.Errorf("at_hash %v does not match the access token", id["at_hash"])
		}

		// Access token: RFC 9068.
		h, at := e.verifyJWT(tr.AccessToken)
		if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" {
			t.Errorf("access token typ %q, want at+jwt", typ)
		}
		for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"} {
			if _, ok := at[c]; !ok {
				t.Errorf("access token lacks %s: %v", c, at)
			}
		}
		if at["sub"] != e.user.ID || at["client_id"] != spaID || at["scope"] != allUserScopes {
			t.Errorf("access token claims: %v", at)
		}
		if aud, _ := at["aud"].([]any); !slices.Contains(aud, any(apiID)) {
			t.Errorf("access token aud %v, want the default audience %s", at["aud"], apiID)
		}

		// Userinfo with the access token, GET and POST.
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, e.issuer+pathUserinfo, nil)
			req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var info map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || info["sub"] != e.user.ID || info["email"] != userEmail || info["email_verified"] != true || info["given_name"] != "Alice" {
				t.Errorf("userinfo %s: %d %v", method, resp.StatusCode, info)
			}
		}

		// RFC 6750 section 2.2: the token in a form body.
		resp, body := e.post(pathUserinfo, url.Values{"access_token": {tr.AccessToken}}, "", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), e.user.ID) {
			t.Errorf("userinfo with a form token: %d %s", resp.StatusCode, body)
		}

		// A second authorization in the same browser needs no login.
		ar2 := spaAuth()
		q := redirectParams(t, br.get(e.authURL(ar2)), spaRedirect)
		if q.Get("code") == "" || q.Get("state") != testState {
			t.Fatalf("SSO: %v", q)
		}
		mustOK(t, e.exchange(q.Get("code"), ar2))
	})
}

func TestConfidentialClientCodeFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth("client_id", webID, "redirect_uri", webRedirect, "code_challenge", "", "code_challenge_method", "")
		code := e.browser().loginForCode(ar)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}}
		wantTokenError(t, e.token(form, webID, "wrong"), http.StatusUnauthorized, "invalid_client")
		tr := mustOK(t, e.token(form, webID, webSecret))
		_, at := e.verifyJWT(tr.AccessToken)
		if aud, _ := at["aud"].([]any); len(aud) != 1 || aud[0] != webID {
			t.Errorf("aud without a granted audience should be the client: %v", at["aud"])
		}
	})
}

func TestRefreshRotationAndReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		// Without the reuse grace, so that an immediate reuse counts
		// (TestRefreshReuseGraceWindow tests reuse after the window).
		e := newTestEnv(t, b, func(c *Config) { c.RefreshReuseGrace = -1 })
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))

		second := mustOK(t, e.refresh(first.RefreshToken))
		if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatal("refresh token was not rotated")
		}
		if second.IDToken == "" {
			t.Error("refresh did not re-issue the ID token")
		}
		_, id := e.verifyJWT(second.IDToken)
		if id["sub"] != e.user.ID {
			t.Errorf("refreshed ID token sub %v", id["sub"])
		}
		if !e.active(second.AccessToken) || !e.active(second.RefreshToken) {
			t.Fatal("new tokens should be active")
		}
		if e.active(first.RefreshToken) {
			t.Fatal("the rotated refresh token is still active")
		}

		// Reuse of the rotated token revokes the whole family.
		wantTokenError(t, e.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
		for name, tok := range map[string]string{"first access": first.AccessToken, "second access": second.AccessToken, "second refresh": second.RefreshToken} {
			if e.active(tok) {
				t.Errorf("%s token still active after reuse", name)
			}
		}
		wantTokenError(t, e.refresh(second.RefreshToken), http.StatusBadRequest, "invalid_grant")
	})
}

func TestRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))

		// Another client may not revoke it.
		resp, _ := e.post(pathRevoke, url.Values{"token": {tr.RefreshToken}}, webID, webSecret)
		if resp.StatusCode == http.StatusOK && !e.active(tr.RefreshToken) {
			t.Fatal("a foreign client revoked the token")
		}
		resp, body := e.post(pathRevoke, url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {spaID}}, "", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %s", resp.StatusCode, body)
		}
		if e.active(tr.RefreshToken) || e.active(tr.AccessToken) {
			t.Fatal("revoking the refresh token must deactivate the grant's tokens")
		}
		wantTokenError(t, e.refresh(tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
		// Unknown tokens: 200 per RFC 7009.
		resp, _ = e.post(pathRevoke, url.Values{"token": {"nonsense"}, "client_id": {spaID}}, "", "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("revoking an unknown token: %d", resp.StatusCode)
		}
		resp, body = e.post(pathRevoke, url.Values{"token": {tr.AccessToken}}, "", "")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) {
			t.Errorf("revocation without client: %d %s", resp.StatusCode, body)
		}
		resp, body = e.post(pathRevoke, url.Values{"token": {tr.AccessToken}}, webID, "wrong")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) {
			t.Errorf("revocation with a wrong secret: %d %s", resp.StatusCode, body)
		}
	})
}

func TestIntrospection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))

		m := e.introspect(tr.AccessToken) // api is in the token's audience
		if m["active"] != true || m["sub"] != e.user.ID || m["client_id"] != spaID || m["scope"] != allUserScopes || m["exp"] == nil || m["token_type"] != "Bearer" {
			t.Fatalf("introspection: %v", m)
		}
		// web is neither the client nor in the audience.
		resp, body := e.post(pathIntrospect, url.Values{"token": {tr.AccessToken}}, webID, webSecret)
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"active":false}` {
			t.Errorf("foreign client introspection: %d %s", resp.StatusCode, body)
		}
		// Refresh tokens only to their own client.
		if e.introspect(tr.RefreshToken)["active"] != false {
			t.Error("api may not introspect the SPA's refresh token")
		}
		// An access token with no granted audience is meant for its own
		// client (its aud is that client): nobody else may introspect it,
		// neither a user's token nor another client's client_credentials
		// token.
		war := spaAuth("client_id", webID, "redirect_uri", webRedirect, "code_challenge", "", "code_challenge_method", "")
		wcode := e.browser().loginForCode(war)
		wtr := mustOK(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {wcode}, "redirect_uri": {webRedirect}}, webID, webSecret))
		if _, at := e.verifyJWT(wtr.AccessToken); fmt.Sprint(at["aud"]) != "["+webID+"]" {
			t.Fatalf("aud of web's token: %v", at["aud"])
		}
		if m := e.introspect(wtr.AccessToken); m["active"] != false || len(m) != 1 {
			t.Errorf("api may introspect web's access token (aud web): %v", m)
		}
		wcc := mustOK(t, e.token(url.Values{"grant_type": {"client_credentials"}}, webID, webSecret))
		if m := e.introspect(wcc.AccessToken); m["active"] != false || len(m) != 1 {
			t.Errorf("api may introspect web's client_credentials token: %v", m)
		}
		acc := mustOK(t, e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "audience": {"reports"}}, apiID, apiSecret))
		for _, tok := range []string{acc.AccessToken, tr.RefreshToken} {
			if resp, body := e.post(pathIntrospect, url.Values{"token": {tok}}, webID, webSecret); strings.TrimSpace(string(body)) != `{"active":false}` {
				t.Errorf("web may introspect another client's token: %d %s", resp.StatusCode, body)
			}
		}
		// Each client still sees its own tokens.
		for _, tok := range []string{wtr.AccessToken, wcc.AccessToken} {
			if resp, body := e.post(pathIntrospect, url.Values{"token": {tok}}, webID, webSecret); !strings.Contains(string(body), `"active":true`) {
				t.Errorf("web cannot introspect its own token: %d %s", resp.StatusCode, body)
			}
		}
		if m := e.introspect(acc.AccessToken); m["active"] != true || m["client_id"] != apiID {
			t.Errorf("api cannot introspect its own client_credentials token: %v", m)
		}
		if e.introspect(wtr.RefreshToken)["active"] != false {
			t.Error("web's refresh token is visible to api")
		}
		if resp, body := e.post(pathIntrospect, url.Values{"token": {wtr.RefreshToken}}, webID, webSecret); !strings.Contains(string(body), `"active":true`) {
			t.Errorf("web cannot introspect its own refresh token: %d %s", resp.StatusCode, body)
		}
		cases := []struct {
			name       string
			user, pass string
			header     []string
		}{
			{"no authentication", "", "", nil},
			{"bearer token only", "", "", []string{"Authorization", "Bearer " + tr.AccessToken}},
			{"wrong secret", apiID, "wrong", nil},
			{"public client", spaID, "", nil},
		}
		for _, c := range cases {
			form := url.Values{"token": {tr.AccessToken}}
			if c.name == "public client" {
				form.Set("client_id", spaID)
			}
			resp, body := e.post(pathIntrospect, form, c.user, c.pass, c.header...)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_client") {
				t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
			}
		}
		if e.active("not-a-token") {
			t.Error("garbage is active")
		}
	})
}

func TestClientCredentials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}, "audience": {"reports"}}
		tr := mustOK(t, e.token(form, apiID, apiSecret))
		if tr.RefreshToken != "" || tr.IDToken != "" || tr.Scope != "read" {
			t.Errorf("client_credentials response: %+v", tr)
		}
		h, at := e.verifyJWT(tr.AccessToken)
		if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" || at["sub"] != apiID || at["client_id"] != apiID || at["scope"] != "read" {
			t.Errorf("client_credentials token: %v %v", h.ExtraHeaders, at)
		}
		if aud, _ := at["aud"].([]any); len(aud) != 1 || aud[0] != "reports" {
			t.Errorf("aud %v", at["aud"])
		}
		if !e.active(tr.AccessToken) {
			t.Error("client_credentials token inactive")
		}
		// Basic auth with client_secret_post form fields works too? No:
		// api is registered for client_secret_basic.
		wantTokenError(t, e.token(form, apiID, "wrong-secret"), http.StatusUnauthorized, "invalid_client")
		wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, apiID, apiSecret), http.StatusBadRequest, "invalid_scope")
		wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {spaID}}, "", ""), http.StatusBadRequest, "unauthorized_client")
		// userinfo refuses a token without openid.
		req, _ := http.NewRequest(http.MethodGet, e.issuer+pathUserinfo, nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("userinfo with a client token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestPromptNone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
		if q.Get("error") != "login_required" || q.Get("state") != testState || q.Get("code") != "" {
			t.Fatalf("prompt=none without a session: %v", q)
		}
		br.loginForCode(spaAuth())
		ar := spaAuth("prompt", "none")
		q = redirectParams(t, br.get(e.authURL(ar)), spaRedirect)
		if q.Get("code") == "" {
			t.Fatalf("prompt=none with a session: %v", q)
		}
		mustOK(t, e.exchange(q.Get("code"), ar))
	})
}

func TestPromptLoginAndMaxAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		br.loginForCode(spaAuth())

		// prompt=login shows the login page despite the session.
		ar := spaAuth("prompt", "login")
		p := br.get(e.authURL(ar))
		if p.status != http.StatusOK || !loginIDRe.MatchString(p.body) {
			t.Fatalf("prompt=login: %d", p.status)
		}
		q := redirectParams(t, br.submitLogin(p, userEmail, userPassword), spaRedirect)
		mustOK(t, e.exchange(q.Get("code"), ar))

		// max_age satisfied: no login.
		q = redirectParams(t, br.get(e.authURL(spaAuth("max_age", "3600"))), spaRedirect)
		if q.Get("code") == "" {
			t.Fatalf("max_age=3600 right after login: %v", q)
		}
		// Age the session: max_age now demands a fresh login.
		old := time.Now().Add(-2 * time.Hour)
		storagetest.SetAuthTime(t, e.store, e.user.ID, old)
		ar = spaAuth("max_age", "60")
		p = br.get(e.authURL(ar))
		if p.status != http.StatusOK || !loginIDRe.MatchString(p.body) {
			t.Fatalf("max_age exceeded should show the login page, got %d", p.status)
		}
		q = redirectParams(t, br.submitLogin(p, userEmail, userPassword), spaRedirect)
		tr := mustOK(t, e.exchange(q.Get("code"), ar))
		_, id := e.verifyJWT(tr.IDToken)
		if at, _ := id["auth_time"].(float64); time.Since(time.Unix(int64(at), 0)) > time.Minute {
			t.Errorf("auth_time %v is not fresh", id["auth_time"])
		}
	})
}

func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		ar := spaAuth()
		tr := mustOK(t, e.exchange(br.loginForCode(ar), ar))

		// An unregistered post_logout_redirect_uri: error page, no redirect,
		// session kept.
		bad := url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"s"}}
		p := br.get(e.issuer + pathLogout + "?" + bad.Encode())
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			t.Fatalf("bad post_logout_redirect_uri: %d %q", p.status, p.header.Get("Location"))
		}
		// An invalid hint is refused too.
		p = br.get(e.issuer + pathLogout + "?" + url.Values{"id_token_hint": {tr.AccessToken}}.Encode())
		if p.status != http.StatusBadRequest {
			t.Fatalf("access token as id_token_hint: %d", p.status)
		}
		q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
		if q.Get("code") == "" {
			t.Fatal("session lost after refused logouts")
		}

		good := url.Values{"id_token_hint": {tr.IDToken}, "post_logout_redirect_uri": {spaLogout}, "state": {"xyz"}}
		q = redirectParams(t, br.get(e.issuer+pathLogout+"?"+good.Encode()), spaLogout)
		if q.Get("state") != "xyz" {
			t.Errorf("state not echoed: %v", q)
		}
		q = redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
		if q.Get("error") != "login_required" {
			t.Fatalf("after logout prompt=none: %v", q)
		}

		// POST, client_id only, no redirect: a "signed out" page.
		p = br.postForm(e.issuer+pathLogout, url.Values{"client_id": {spaID}})
		if p.status != http.StatusOK || !strings.Contains(p.body, "signed out") {
			t.Errorf("logout page: %d %.200s", p.status, p.body)
		}
	})
}

func TestAuthorizeErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		// No redirect to an unverified place: error pages.
		for name, ar := range map[string]authRequest{
			"unknown client":           spaAuth("client_id", "nobody"),
			"unregistered redirect":    spaAuth("redirect_uri", "https://evil.example/cb"),
			"redirect with extra path": spaAuth("redirect_uri", spaRedirect+"/x"),
		} {
			p := br.get(e.authURL(ar))
			if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
				t.Errorf("%s: %d %q", name, p.status, p.header.Get("Location"))
			}
			if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("%s: security headers missing", name)
			}
		}
		// Errors after the client and redirect_uri are verified: a
		// redirect with error and state.
		for name, c := range map[string]struct {
			ar   authRequest
			want string
		}{
			"missing challenge": {spaAuth("code_challenge", "", "code_challenge_method", ""), "invalid_request"},
			"plain method":      {spaAuth("code_challenge_method", "plain"), "invalid_request"},
			"implicit":          {spaAuth("response_type", "token"), "unsupported_response_type"},
			"unknown scope":     {spaAuth("scope", "openid admin"), "invalid_scope"},
			"short state":       {spaAuth("state", "abc"), "invalid_state"},
			"prompt none+login": {spaAuth("prompt", "none login"), "invalid_request"},
		} {
			p := br.get(e.authURL(c.ar))
			if p.status == http.StatusOK {
				t.Errorf("%s: the login page instead of an error", name)
				continue
			}
			q := redirectParams(t, p, spaRedirect)
			if q.Get("error") != c.want {
				t.Errorf("%s: error %q (%s), want %q", name, q.Get("error"), q.Get("error_description"), c.want)
			}
		}
	})
}

func TestTokenErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()

		ar := spaAuth()
		code := br.loginForCode(ar)
		wrong := ar
		wrong.verifier = newVerifier()
		wantTokenError(t, e.exchange(code, wrong), http.StatusBadRequest, "invalid_grant")

		// A replayed code fails and revokes what the first exchange issued.
		ar = spaAuth()
		code = redirectParams(t, br.get(e.authURL(ar)), spaRedirect).Get("code") // the session is still there
		tr := mustOK(t, e.exchange(code, ar))
		wantTokenError(t, e.exchange(code, ar), http.StatusBadRequest, "invalid_grant")
		if e.active(tr.AccessToken) || e.active(tr.RefreshToken) {
			t.Error("tokens of a replayed code are still active")
		}

		wantTokenError(t, e.token(url.Values{"code": {"x"}, "client_id": {spaID}}, "", ""), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, e.token(url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {userPassword}, "client_id": {spaID}}, "", ""), http.StatusBadRequest, "unsupported_grant_type")
		wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {"garbage"}, "client_id": {spaID}, "redirect_uri": {spaRedirect}, "code_verifier": {newVerifier()}}, "", ""), http.StatusBadRequest, "invalid_grant")
		wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"garbage"}, "client_id": {spaID}}, "", ""), http.StatusBadRequest, "invalid_grant")
		wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}, "", ""), http.StatusUnauthorized, "invalid_client")
		wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}}, "", ""), http.StatusUnauthorized, "invalid_client")
		wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, "", ""), http.StatusUnauthorized, "invalid_client")

		resp, err := http.Get(e.issuer + pathToken)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET token endpoint: %d", resp.StatusCode)
		}
	})
}

func TestLoginForm(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		p := br.get(e.authURL(spaAuth()))
		for _, want := range []string{`<form method="post"`, `name="email"`, `name="password"`, `autocomplete="email"`, `autocomplete="current-password"`, `<label for="email"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("login page lacks %s", want)
			}
		}
		wrongPw := br.submitLogin(p, userEmail, "wrong password!")
		unknown := br.submitLogin(p, "nobody@example.com", userPassword)
		for name, r := range map[string]page{"wrong password": wrongPw, "unknown user": unknown} {
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "incorrect") || !loginIDRe.MatchString(r.body) {
				t.Errorf("%s: %d %.300s", name, r.status, r.body)
			}
		}
		if msg := func(p page) string { i := strings.Index(p.body, `role="alert"`); return p.body[i : i+80] }; msg(wrongPw) != msg(unknown) {
			t.Errorf("messages differ: %q vs %q", msg(wrongPw), msg(unknown))
		}
		if r := br.submitLogin(p, disabledEmail, userPassword); r.status != http.StatusForbidden || !strings.Contains(r.body, "disabled") {
			t.Errorf("disabled user: %d", r.status)
		}
		if r := br.submitLogin(p, inactiveEmail, userPassword); r.status != http.StatusForbidden || !strings.Contains(r.body, "not activated") {
			t.Errorf("inactive user: %d", r.status)
		}

		// Another browser cannot use this pending login.
		other := e.browser()
		if r := other.submitLogin(p, userEmail, userPassword); r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
			t.Errorf("foreign browser: %d", r.status)
		}
		// A cross-site POST is refused.
		req, _ := http.NewRequest(http.MethodPost, e.issuer+pathLogin, strings.NewReader(url.Values{"login": {loginID(t, p)}, "email": {userEmail}, "password": {userPassword}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := br.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST: %d", resp.StatusCode)
		}
		// The right password still works, once.
		redirectParams(t, br.submitLogin(p, userEmail, userPassword), spaRedirect)
		if r := br.submitLogin(p, userEmail, userPassword); r.status != http.StatusBadRequest {
			t.Errorf("reused login id: %d", r.status)
		}
	})
}

func TestDiscoveryJWKSAndCORS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		resp, err := http.Get(e.issuer + pathDiscovery)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc["issuer"] != e.issuer || doc["jwks_uri"] != e.issuer+pathJWKS || doc["end_session_endpoint"] != e.issuer+pathLogout {
			t.Errorf("discovery: %v", doc)
		}
		if m, _ := doc["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
			t.Errorf("code_challenge_methods_supported %v", doc["code_challenge_methods_supported"])
		}
		// SECURITY.md's known gaps: no pushed authorization requests.
		if _, ok := doc["pushed_authorization_request_endpoint"]; ok {
			t.Errorf("discovery advertises PAR: %v", doc["pushed_authorization_request_endpoint"])
		}

		resp, err = http.Get(e.issuer + pathJWKS)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if etag == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
			t.Fatalf("JWKS headers: %v", resp.Header)
		}
		req, _ := http.NewRequest(http.MethodGet, e.issuer+pathJWKS, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("conditional JWKS: %d", resp.StatusCode)
		}
		if len(e.jwks().Keys) < 2 {
			t.Error("JWKS should publish the current and the next key")
		}

		for _, path := range []string{pathToken, pathRevoke, pathUserinfo, pathJWKS, pathDiscovery} {
			for origin, allowed := range map[string]bool{spaOrigin: true, "https://evil.example": false} {
				req, _ := http.NewRequest(http.MethodOptions, e.issuer+path, nil)
				req.Header.Set("Origin", origin)
				req.Header.Set("Access-Control-Request-Method", "POST")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got := resp.Header.Get("Access-Control-Allow-Origin")
				if (got == origin) != allowed || (!allowed && got != "") || resp.StatusCode != http.StatusNoContent {
					t.Errorf("preflight %s from %s: %d allow-origin %q", path, origin, resp.StatusCode, got)
				}
				if !slices.Contains(resp.Header.Values("Vary"), "Origin") {
					t.Errorf("preflight %s: no Vary: Origin", path)
				}
				if allowed && resp.Header.Get("Access-Control-Max-Age") != "600" {
					t.Errorf("preflight %s: Access-Control-Max-Age %q, want 600", path, resp.Header.Get("Access-Control-Max-Age"))
				}
			}
		}
		req, _ = http.NewRequest(http.MethodGet, e.issuer+pathDiscovery, nil)
		req.Header.Set("Origin", spaOrigin)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin {
			t.Error("GET discovery from an allowed origin lacks CORS")
		}
		if resp, err = http.Get(e.issuer + pathHealth); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("healthz: %v %v", resp, err)
		}
	})
}

func TestUserinfoErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		for name, auth := range map[string]string{"no token": "", "garbage": "Bearer garbage", "basic": "Basic YTpi"} {
			req, _ := http.NewRequest(http.MethodGet, e.issuer+pathUserinfo, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			www := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(www, "Bearer") {
				t.Errorf("%s: %d %q", name, resp.StatusCode, www)
			}
			if name == "garbage" && !strings.Contains(www, `error="invalid_token"`) {
				t.Errorf("%s: %q", name, www)
			}
		}
	})
}

// Authorization responses, codes and errors alike, carry the issuer in iss
// (RFC 9207), and discovery says so.
func TestAuthorizationResponseIssuer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		br := e.browser()
		q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", "none"))), spaRedirect)
		if q.Get("error") != "login_required" || q.Get("iss") != e.issuer {
			t.Errorf("error response %v, want login_required with iss=%s", q, e.issuer)
		}
		br.loginForCode(spaAuth())
		q = redirectParams(t, br.get(e.authURL(spaAuth())), spaRedirect)
		if q.Get("code") == "" || q.Get("iss") != e.issuer || q.Get("state") != testState {
			t.Errorf("code response %v, want a code, state and iss=%s", q, e.issuer)
		}
		var doc map[string]any
		resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc["authorization_response_iss_parameter_supported"] != true {
			t.Error("discovery does not say authorization_response_iss_parameter_supported")
		}
	})
}
