package facebook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
)

const (
	testAppID     = "1234567890"
	testAppSecret = "fb-app-secret"
	testCallback  = "http://127.0.0.1:8080/callback/facebook"
	testState     = "state-0123456789"
)

func startIdP(t testing.TB) (*fakeidp.Server, string) {
	t.Helper()
	cfg := fakeidp.DemoConfig()
	cfg.Clients = []fakeidp.Client{{ID: testAppID, Secret: testAppSecret, RedirectURIs: []string{testCallback}}}
	idp, err := fakeidp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	return idp, srv.URL
}

func newConnector(t testing.TB, base string, cfg Config) *Connector {
	t.Helper()
	cfg.DialogURL, cfg.GraphURL = base, base
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = testAppID, testAppSecret
	}
	c, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func login(t testing.TB, c *Connector, subject string) (connectors.Identity, error) {
	t.Helper()
	ctx := context.Background()
	resp, err := c.LoginURL(ctx, connectors.LoginRequest{State: testState, CallbackURL: testCallback})
	if err != nil {
		t.Fatal(err)
	}
	back, err := fakeidp.Login(ctx, resp.URL, subject)
	if err != nil {
		t.Fatalf("log in at fake Facebook: %v", err)
	}
	if back.Query().Get("state") != testState {
		t.Fatalf("state came back as %q", back.Query().Get("state"))
	}
	return c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()})
}

func TestLogin(t *testing.T) {
	_, base := startIdP(t)
	c := newConnector(t, base, Config{APIVersion: "v19.0"})
	resp, err := c.LoginURL(context.Background(), connectors.LoginRequest{State: testState, CallbackURL: testCallback})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(resp.URL)
	if u.Path != "/v19.0/dialog/oauth" || u.Query().Get("scope") != "email,public_profile" || u.Query().Get("client_id") != testAppID {
		t.Errorf("dialog URL = %s", resp.URL)
	}
	ident, err := login(t, c, "1001")
	if err != nil {
		t.Fatal(err)
	}
	if ident.Subject != "1001" || ident.Email != "alice@example.com" || ident.Name != "Alice Anderson" ||
		ident.GivenName != "Alice" || ident.FamilyName != "Anderson" || ident.Picture != "https://example.com/avatars/alice.png" {
		t.Errorf("identity = %+v", ident)
	}
	if ident.EmailVerified {
		t.Error("Facebook e-mail counted as verified without trust_email")
	}
	trusting := newConnector(t, base, Config{TrustEmail: true})
	ident, err = login(t, trusting, "1002")
	if err != nil {
		t.Fatal(err)
	}
	if !ident.EmailVerified || ident.Picture != "" {
		t.Errorf("trust_email identity (silhouette picture dropped) = %+v", ident)
	}
}

func TestMissingEmailPolicy(t *testing.T) {
	_, base := startIdP(t)
	_, err := login(t, newConnector(t, base, Config{}), "1004")
	if !errors.Is(err, connectors.ErrPolicy) || !strings.Contains(err.Error(), "did not share an e-mail address") {
		t.Errorf("dave has no e-mail: got %v, want ErrPolicy with a readable message", err)
	}
	// Without the email permission Facebook shares no address either.
	_, err = login(t, newConnector(t, base, Config{Scopes: []string{"public_profile"}}), "1001")
	if !errors.Is(err, connectors.ErrPolicy) {
		t.Errorf("email permission not asked: got %v, want ErrPolicy", err)
	}
	ident, err := login(t, newConnector(t, base, Config{MissingEmail: MissingEmailAllow}), "1004")
	if err != nil {
		t.Fatalf("missing_email: allow: %v", err)
	}
	if ident.Subject != "1004" || ident.Email != "" || ident.EmailVerified {
		t.Errorf("identity = %+v", ident)
	}
}

func TestUpstreamDenied(t *testing.T) {
	_, base := startIdP(t)
	c := newConnector(t, base, Config{})
	resp, err := c.LoginURL(context.Background(), connectors.LoginRequest{State: testState, CallbackURL: testCallback})
	if err != nil {
		t.Fatal(err)
	}
	back, err := fakeidp.Deny(context.Background(), resp.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.HandleCallback(context.Background(), connectors.CallbackRequest{ConnectorState: nil, CallbackURL: testCallback, Query: back.Query()})
	if !errors.Is(err, connectors.ErrUpstreamDenied) || !strings.Contains(err.Error(), "user_denied") {
		t.Errorf("got %v, want ErrUpstreamDenied naming user_denied", err)
	}
	_, err = c.HandleCallback(context.Background(), connectors.CallbackRequest{ConnectorState: nil, CallbackURL: testCallback, Query: url.Values{"state": {testState}}})
	if !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("callback without code: got %v", err)
	}
}

func TestTokenExchangeErrors(t *testing.T) {
	idp, base := startIdP(t)
	c := newConnector(t, base, Config{})
	idp.FailNextTokenRequest("invalid_code")
	if _, err := login(t, c, "1001"); !errors.Is(err, connectors.ErrUpstreamDenied) {
		t.Errorf("token exchange refused: got %v, want ErrUpstreamDenied", err)
	}
	wrong := newConnector(t, base, Config{ClientID: testAppID, ClientSecret: "wrong-secret"})
	_, err := login(t, wrong, "1001")
	if err == nil || errors.Is(err, connectors.ErrUpstreamDenied) || !strings.Contains(err.Error(), "client secret") {
		t.Errorf("wrong app secret should be a configuration error, got %v", err)
	}
}

// accessToken logs alice in and returns the Graph access token the
// connector kept.
func accessToken(t *testing.T, c *Connector, subject string) (connectors.Identity, string) {
	t.Helper()
	ident, err := login(t, c, subject)
	if err != nil {
		t.Fatal(err)
	}
	var data connectorData
	if err := json.Unmarshal(ident.ConnectorData, &data); err != nil || data.AccessToken == "" {
		t.Fatalf("connector data %q: %v", ident.ConnectorData, err)
	}
	return ident, data.AccessToken
}

func TestAppSecretProofRequired(t *testing.T) {
	_, base := startIdP(t)
	c := newConnector(t, base, Config{})
	_, token := accessToken(t, c, "1001")
	for name, proof := range map[string]string{
		"missing": "",
		"forged":  AppSecretProof("not-the-app-secret", token),
	} {
		q := url.Values{"fields": {"id,email"}, "access_token": {token}}
		if proof != "" {
			q.Set("appsecret_proof", proof)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(base + "/v23.0/me?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error graphError `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(body.Error.Message, "appsecret_proof") {
			t.Errorf("%s proof: status %d, error %+v (%v)", name, resp.StatusCode, body.Error, err)
		}
	}
	// The connector itself, holding the wrong secret, is refused too.
	wrong := newConnector(t, base, Config{ClientID: testAppID, ClientSecret: "not-the-app-secret"})
	if _, err := wrong.me(context.Background(), token); err == nil || !strings.Contains(err.Error(), "appsecret_proof") {
		t.Errorf("Graph call with a forged proof: %v", err)
	}
}

func TestRefresh(t *testing.T) {
	idp, base := startIdP(t)
	c := newConnector(t, base, Config{})
	ident, _ := accessToken(t, c, "1002")
	fresh, err := c.Refresh(context.Background(), connectors.Scopes{}, ident)
	if err != nil || fresh.Subject != "1002" || fresh.Email != "bob@example.org" {
		t.Fatalf("Refresh: %+v, %v", fresh, err)
	}
	if err := idp.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), connectors.Scopes{}, fresh); !errors.Is(err, connectors.ErrIdentityRevoked) {
		t.Errorf("Refresh of a disabled user: got %v, want ErrIdentityRevoked", err)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, []byte(`{"client_id":"a","client_secret":"b"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	fb := c.(*Connector)
	if fb.dialog != "https://www.facebook.com/v23.0/dialog/oauth" || fb.graph != "https://graph.facebook.com/v23.0" || fb.cfg.MissingEmail != MissingEmailReject {
		t.Errorf("defaults: %s %s %s", fb.dialog, fb.graph, fb.cfg.MissingEmail)
	}
	for name, cfg := range map[string]string{
		"no secret":    `{"client_id":"a"}`,
		"unknown key":  `{"client_id":"a","client_secret":"b","app_id":"c"}`,
		"bad policy":   `{"client_id":"a","client_secret":"b","missing_email":"maybe"}`,
		"plain http":   `{"client_id":"a","client_secret":"b","graph_url":"http://graph.example"}`,
		"bad version":  `{"client_id":"a","client_secret":"b","api_version":"v1/../x"}`,
		"bad timeout":  `{"client_id":"a","client_secret":"b","timeout":"-1s"}`,
		"relative URL": `{"client_id":"a","client_secret":"b","dialog_url":"/dialog"}`,
	} {
		if _, err := Open(ctx, []byte(cfg), nil); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
}

func BenchmarkFederatedLogin(b *testing.B) {
	_, base := startIdP(b)
	c := newConnector(b, base, Config{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.LoginURL(ctx, connectors.LoginRequest{State: testState, CallbackURL: testCallback})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		back, err := fakeidp.Login(ctx, resp.URL, "1001")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: nil, CallbackURL: testCallback, Query: back.Query()}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRefreshTokenStates drives Refresh against a Graph stand-in answering
// each code-190 case.
func TestRefreshTokenStates(t *testing.T) {
	for _, tc := range []struct {
		subcode int
		revoked bool
	}{{458, true}, {460, true}, {463, false}, {467, false}} {
		graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"message": "token problem", "type": "OAuthException", "code": 190, "error_subcode": tc.subcode}})
		}))
		c := newConnector(t, graph.URL, Config{})
		ident := connectors.Identity{Subject: "1", Email: "a@example.com", ConnectorData: []byte(`{"access_token":"t"}`)}
		got, err := c.Refresh(context.Background(), connectors.Scopes{}, ident)
		graph.Close()
		if tc.revoked && !errors.Is(err, connectors.ErrIdentityRevoked) {
			t.Errorf("subcode %d: got %v, want ErrIdentityRevoked", tc.subcode, err)
		}
		if !tc.revoked && (err != nil || got.Email != ident.Email) {
			t.Errorf("subcode %d: got %+v, %v; want the identity unchanged", tc.subcode, got, err)
		}
	}
}
