package fakeidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testClient   = "client-1"
	testSecret   = "client-1-secret"
	testRedirect = "http://127.0.0.1:9999/callback"
)

func start(t *testing.T) (*Server, string) {
	t.Helper()
	return startWith(t, nil)
}

// startWith is start with changes to the demo config.
func startWith(t *testing.T, change func(*Config)) (*Server, string) {
	t.Helper()
	cfg := DemoConfig()
	cfg.Clients = append(cfg.Clients, Client{ID: testClient, Secret: testSecret, RedirectURIs: []string{testRedirect}})
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func getJSON(t *testing.T, target string, v any) int {
	t.Helper()
	resp, err := httpClient.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return resp.StatusCode
}

func TestDiscovery(t *testing.T) {
	_, base := start(t)
	for _, tc := range []struct{ path, issuer, authorize, jwks string }{
		{"/oauth2/default/.well-known/openid-configuration", base + "/oauth2/default",
			base + "/oauth2/default/v1/authorize", base + "/oauth2/default/v1/keys"},
		{"/oauth2/aus9/.well-known/openid-configuration", base + "/oauth2/aus9",
			base + "/oauth2/aus9/v1/authorize", base + "/oauth2/aus9/v1/keys"},
		{"/.well-known/openid-configuration", base, base + "/o/oauth2/v2/auth", base + "/oauth2/v3/certs"},
	} {
		var doc map[string]any
		if status := getJSON(t, base+tc.path, &doc); status != http.StatusOK {
			t.Fatalf("%s: %d", tc.path, status)
		}
		if doc["issuer"] != tc.issuer || doc["authorization_endpoint"] != tc.authorize || doc["jwks_uri"] != tc.jwks {
			t.Errorf("%s: %v", tc.path, doc)
		}
		var jwks struct {
			Keys []map[string]any `json:"keys"`
		}
		getJSON(t, tc.jwks, &jwks)
		if len(jwks.Keys) != 1 || jwks.Keys[0]["kid"] == "" || jwks.Keys[0]["kty"] != "RSA" || jwks.Keys[0]["d"] != nil {
			t.Errorf("JWKS %v", jwks)
		}
	}
}

func authorizeURL(base, path string, extra url.Values) string {
	q := url.Values{
		"client_id": {testClient}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {"openid email profile offline_access"}, "state": {"st-123"}, "nonce": {"n-123"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return base + path + "?" + q.Encode()
}

func TestAuthorizeRefusals(t *testing.T) {
	_, base := start(t)
	// Client and redirect problems are shown, never redirected.
	for name, target := range map[string]string{
		"unknown client": authorizeURL(base, "/oauth2/default/v1/authorize", url.Values{"client_id": {"nobody"}}),
		"bad redirect":   authorizeURL(base, "/o/oauth2/v2/auth", url.Values{"redirect_uri": {"https://evil.example/cb"}}),
	} {
		resp, err := httpClient.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Protocol problems go back to the client.
	for name, tc := range map[string]struct {
		extra url.Values
		code  string
	}{
		"no openid":   {url.Values{"scope": {"email"}}, "invalid_scope"},
		"plain PKCE":  {url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, "invalid_request"},
		"token flow":  {url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		"short PKCE":  {url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"S256"}}, "invalid_request"},
		"method only": {url.Values{"code_challenge_method": {"S256"}}, "invalid_request"},
	} {
		back, err := Login(context.Background(), authorizeURL(base, "/oauth2/default/v1/authorize", tc.extra), "1001")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if back.Query().Get("error") != tc.code || back.Query().Get("state") != "st-123" {
			t.Errorf("%s: redirected to %s", name, back)
		}
	}
}

func TestLoginPage(t *testing.T) {
	s, base := start(t)
	target := authorizeURL(base, "/oauth2/default/v1/authorize", url.Values{"login_hint": {"bob@example.org"}})
	resp, err := httpClient.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"Alice Anderson", `name="subject" value="1001"`, `name="nonce" value="n-123"`,
		`value="bob@example.org"`, "(disabled)", `name="action" value="deny"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	ctx := context.Background()
	if _, err := LoginWithPassword(ctx, target, "alice@example.com", "nope"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := Login(ctx, target, "1005"); err == nil {
		t.Error("disabled user logged in")
	}
	if err := s.SetUserDisabled("1005", false); err != nil {
		t.Fatal(err)
	}
	if _, err := Login(ctx, target, "1005"); err != nil {
		t.Errorf("re-enabled user: %v", err)
	}
	if err := s.SetUserDisabled("nobody", true); err == nil {
		t.Error("disabling an unknown user succeeded")
	}
}

type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Error        string `json:"error"`
}

func postToken(t *testing.T, endpoint string, form url.Values, basic bool) (int, tokenAnswer) {
	t.Helper()
	if !basic {
		form.Set("client_id", testClient)
		form.Set("client_secret", testSecret)
	}
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(testClient, testSecret)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a
}

func TestCodeFlow(t *testing.T) {
	s, base := start(t)
	ctx := context.Background()
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	pkce := url.Values{"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	tokenURL := base + "/oauth2/default/v1/token"

	back, err := Login(ctx, authorizeURL(base, "/oauth2/default/v1/authorize", pkce), "1002")
	if err != nil {
		t.Fatal(err)
	}
	code := back.Query().Get("code")
	form := func(v string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {v}}
	}
	// Google's token endpoint does not redeem Okta's codes.
	if status, a := postToken(t, base+"/token", form(verifier), true); status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("code at the wrong issuer: %d %+v", status, a)
	}
	back, _ = Login(ctx, authorizeURL(base, "/oauth2/default/v1/authorize", pkce), "1002")
	code = back.Query().Get("code")
	if status, a := postToken(t, tokenURL, form(strings.Repeat("w", 43)), true); status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("wrong verifier: %d %+v", status, a)
	}
	back, _ = Login(ctx, authorizeURL(base, "/oauth2/default/v1/authorize", pkce), "1002")
	code = back.Query().Get("code")
	status, a := postToken(t, tokenURL, form(verifier), false)
	if status != http.StatusOK || a.AccessToken == "" || a.IDToken == "" || a.RefreshToken == "" {
		t.Fatalf("code exchange: %d %+v", status, a)
	}
	if status, again := postToken(t, tokenURL, form(verifier), true); status != http.StatusBadRequest || again.Error != "invalid_grant" {
		t.Errorf("code reuse: %d %+v", status, again)
	}

	// userinfo, then the user is disabled: userinfo and refresh fail.
	req, _ := http.NewRequest(http.MethodGet, base+"/oauth2/default/v1/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+a.AccessToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || info["sub"] != "1002" || info["email"] != "bob@example.org" {
		t.Errorf("userinfo: %d %v", resp.StatusCode, info)
	}
	status, r := postToken(t, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}, true)
	if status != http.StatusOK || r.RefreshToken == "" || r.RefreshToken == a.RefreshToken || r.IDToken == "" {
		t.Errorf("Okta refresh (rotating): %d %+v", status, r)
	}
	if err := s.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if status, bad := postToken(t, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}, true); status != http.StatusBadRequest || bad.Error != "invalid_grant" {
		t.Errorf("refresh of a disabled user: %d %+v", status, bad)
	}
	resp, err = httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo of a disabled user: %d", resp.StatusCode)
	}

	// Client authentication and forced failures.
	badAuth, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader("grant_type=authorization_code&code=x"))
	badAuth.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	badAuth.SetBasicAuth(testClient, "wrong")
	resp, err = httpClient.Do(badAuth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong client secret: %d", resp.StatusCode)
	}
	s.FailNextTokenRequest("temporarily_unavailable")
	if status, f := postToken(t, tokenURL, form(verifier), true); status != http.StatusBadRequest || f.Error != "temporarily_unavailable" {
		t.Errorf("forced failure: %d %+v", status, f)
	}
}

// TestOktaRefreshGrace: a rotated Okta refresh token stays usable for the
// grace period, as at Okta, and not after it; with no grace, not at all.
func TestOktaRefreshGrace(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	s, base := startWith(t, func(c *Config) { c.OktaRefreshGrace = 30 * time.Second })
	s.now = func() time.Time { return time.Unix(0, clock.Load()) }
	tokenURL := base + "/oauth2/default/v1/token"
	refresh := func(token string) (int, tokenAnswer) {
		return postToken(t, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, true)
	}
	first := oktaTokens(t, base)
	status, second := refresh(first.RefreshToken)
	if status != http.StatusOK || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("first refresh: %d %+v", status, second)
	}
	clock.Add(int64(20 * time.Second))
	if status, again := refresh(first.RefreshToken); status != http.StatusOK || again.RefreshToken == "" {
		t.Errorf("the rotated token within the grace period: %d %+v, want new tokens", status, again)
	}
	clock.Add(int64(11 * time.Second))
	if status, late := refresh(first.RefreshToken); status != http.StatusBadRequest || late.Error != "invalid_grant" {
		t.Errorf("the rotated token after the grace period: %d %+v, want invalid_grant", status, late)
	}
	if status, third := refresh(second.RefreshToken); status != http.StatusOK {
		t.Errorf("the latest token: %d %+v", status, third)
	}

	_, strictBase := startWith(t, func(c *Config) { c.OktaRefreshGrace = 0 })
	first = oktaTokens(t, strictBase)
	strictURL := strictBase + "/oauth2/default/v1/token"
	if status, a := postToken(t, strictURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, true); status != http.StatusOK {
		t.Fatalf("refresh: %d %+v", status, a)
	}
	if status, a := postToken(t, strictURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, true); status != http.StatusBadRequest || a.Error != "invalid_grant" {
		t.Errorf("a rotated token with no grace period: %d %+v, want invalid_grant", status, a)
	}

	if _, err := New(Config{OktaRefreshGrace: 2 * time.Minute}, nil); err == nil {
		t.Error("a grace period over Okta's 60 s limit was accepted")
	}
}

// oktaTokens logs user 1002 in at the Okta flavour and redeems the code.
func oktaTokens(t *testing.T, base string) tokenAnswer {
	t.Helper()
	back, err := Login(context.Background(), authorizeURL(base, "/oauth2/default/v1/authorize", nil), "1002")
	if err != nil {
		t.Fatal(err)
	}
	status, a := postToken(t, base+"/oauth2/default/v1/token", url.Values{"grant_type": {"authorization_code"},
		"code": {back.Query().Get("code")}, "redirect_uri": {testRedirect}}, true)
	if status != http.StatusOK || a.RefreshToken == "" {
		t.Fatalf("code exchange: %d %+v", status, a)
	}
	return a
}

func TestGraph(t *testing.T) {
	_, base := start(t)
	ctx := context.Background()
	back, err := Login(ctx, base+"/v19.0/dialog/oauth?"+url.Values{
		"client_id": {testClient}, "redirect_uri": {testRedirect}, "state": {"s"}, "scope": {"email,public_profile"},
	}.Encode(), "1001")
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(code, redirect string) (int, map[string]any) {
		var out map[string]any
		status := getJSON(t, base+"/v19.0/oauth/access_token?"+url.Values{
			"client_id": {testClient}, "client_secret": {testSecret}, "redirect_uri": {redirect}, "code": {code},
		}.Encode(), &out)
		return status, out
	}
	code := back.Query().Get("code")
	if status, out := exchange(code, "http://127.0.0.1:9999/other"); status != http.StatusBadRequest || out["error"] == nil {
		t.Errorf("redirect mismatch: %d %v", status, out)
	}
	back, _ = Login(ctx, base+"/dialog/oauth?"+url.Values{
		"client_id": {testClient}, "redirect_uri": {testRedirect}, "state": {"s"}, "scope": {"email"},
	}.Encode(), "1001")
	status, out := exchange(back.Query().Get("code"), testRedirect)
	token, _ := out["access_token"].(string)
	if status != http.StatusOK || token == "" || out["token_type"] != "bearer" {
		t.Fatalf("exchange: %d %v", status, out)
	}
	var me map[string]any
	status = getJSON(t, base+"/v19.0/me?"+url.Values{
		"fields": {"id,email,first_name,picture"}, "access_token": {token}, "appsecret_proof": {proof(testSecret, token)},
	}.Encode(), &me)
	pic, _ := me["picture"].(map[string]any)
	if status != http.StatusOK || me["id"] != "1001" || me["email"] != "alice@example.com" || me["first_name"] != "Alice" || pic["data"] == nil || me["name"] != nil {
		t.Errorf("/me: %d %v", status, me)
	}
	var bad struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	status = getJSON(t, base+"/me?"+url.Values{"access_token": {token}, "appsecret_proof": {proof("guess", token)}}.Encode(), &bad)
	if status != http.StatusBadRequest || bad.Error.Code != 100 || !strings.Contains(bad.Error.Message, "appsecret_proof") {
		t.Errorf("forged proof: %d %+v", status, bad)
	}
	status = getJSON(t, base+"/me?"+url.Values{"access_token": {"made-up"}, "appsecret_proof": {proof(testSecret, "made-up")}}.Encode(), &bad)
	if status != http.StatusBadRequest || bad.Error.Code != 190 {
		t.Errorf("unknown token: %d %+v", status, bad)
	}
}

func proof(secret, token string) string {
	return strings.ToLower(hexHMAC(secret, token))
}

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig("../../testdata/upstream/fakeidp-users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Users) != 3 || cfg.Users[0].Email != "ada@example.com" || cfg.Users[0].HostedDomain != "example.com" ||
		!cfg.Users[2].Disabled || len(cfg.Clients) != 1 || len(cfg.Clients[0].RedirectURIs) != 3 {
		t.Errorf("loaded %+v", cfg)
	}
	if _, err := New(cfg, nil); err != nil {
		t.Fatal(err)
	}
	dup := t.TempDir() + "/dup.json"
	if err := writeFile(dup, `{"users":[{"subject":"1"},{"subject":"1"}]}`); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dup); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate subjects: %v", err)
	}
	if cfg.OktaRefreshGrace != 30*time.Second {
		t.Errorf("okta_refresh_grace not in the file: %s, want Okta's default 30s", cfg.OktaRefreshGrace)
	}
	strict := t.TempDir() + "/strict.yaml"
	if err := writeFile(strict, "okta_refresh_grace: 0s\nusers: [{subject: \"1\"}]\n"); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig(strict); err != nil || cfg.OktaRefreshGrace != 0 {
		t.Errorf("okta_refresh_grace: 0s gave %s, %v", cfg.OktaRefreshGrace, err)
	}
}
