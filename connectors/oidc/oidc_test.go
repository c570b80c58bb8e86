package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
)

const (
	testClientID     = "bk-client"
	testClientSecret = "bk-client-secret"
	testCallback     = "http://127.0.0.1:8080/callback/test"
	testState        = "state-0123456789"
)

// startIdP runs a fake upstream with the demo users on 127.0.0.1.
func startIdP(t testing.TB, alg string) (*fakeidp.Server, string) {
	t.Helper()
	cfg := fakeidp.DemoConfig()
	cfg.SigningAlgorithm = alg
	cfg.Clients = []fakeidp.Client{{ID: testClientID, Secret: testClientSecret, RedirectURIs: []string{testCallback}}}
	idp, err := fakeidp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	return idp, srv.URL
}

func newConnector(t testing.TB, cfg Config) *Connector {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	}
	c, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func oktaConnector(t testing.TB, base string) *Connector {
	return newConnector(t, Config{Preset: PresetOkta, Domain: "example.okta.com", Issuer: base + "/oauth2/default"})
}

// start asks the connector for the upstream URL and checks its shape.
func start(t testing.TB, c *Connector, scopes connectors.Scopes) connectors.LoginResponse {
	t.Helper()
	resp, err := c.LoginURL(context.Background(), connectors.LoginRequest{State: testState, CallbackURL: testCallback, Scopes: scopes})
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	return resp
}

// callback completes a started login as the given user, like a browser.
func callback(t testing.TB, c *Connector, resp connectors.LoginResponse, subject string) (connectors.Identity, error) {
	t.Helper()
	ctx := context.Background()
	back, err := fakeidp.Login(ctx, resp.URL, subject)
	if err != nil {
		t.Fatalf("log in at fake IdP: %v", err)
	}
	if got := back.Query().Get("state"); got != testState {
		t.Fatalf("state came back as %q", got)
	}
	return c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()})
}

func login(t testing.TB, c *Connector, subject string, scopes connectors.Scopes) (connectors.Identity, error) {
	t.Helper()
	return callback(t, c, start(t, c, scopes), subject)
}

func TestOktaLogin(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	resp := start(t, c, connectors.Scopes{OfflineAccess: true, Groups: true})
	u, err := url.Parse(resp.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/oauth2/default/v1/authorize" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") != testState {
		t.Fatalf("authorization URL lacks PKCE, nonce or state: %s", resp.URL)
	}
	scopes := strings.Fields(q.Get("scope"))
	for _, want := range []string{"openid", "profile", "email", "offline_access", "groups"} {
		if !slices.Contains(scopes, want) {
			t.Errorf("scope %q not requested: %v", want, scopes)
		}
	}
	ident, err := callback(t, c, resp, "1001")
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	if ident.Subject != "1001" || ident.Email != "alice@example.com" || !ident.EmailVerified ||
		ident.Name != "Alice Anderson" || ident.GivenName != "Alice" || ident.FamilyName != "Anderson" {
		t.Errorf("identity = %+v", ident)
	}
	if !slices.Equal(ident.Groups, []string{"admins", "developers"}) {
		t.Errorf("groups = %v", ident.Groups)
	}
	var data connectorData
	if err := json.Unmarshal(ident.ConnectorData, &data); err != nil || data.RefreshToken == "" {
		t.Errorf("connector data %q holds no refresh token (%v)", ident.ConnectorData, err)
	}
	if ident.Claims["preferred_username"] != "alice@example.com" {
		t.Errorf("claims = %v", ident.Claims)
	}
}

// TestUpstreamAMR: the ID token's amr claim (RFC 8176) becomes the
// identity's AMR, as the upstream sent it; no claim is no AMR; an amr that
// is not a short list of short tokens is dropped, never passed on.
func TestUpstreamAMR(t *testing.T) {
	idp, base := startIdP(t, "")
	c := oktaConnector(t, base)
	for _, tc := range []struct {
		name string
		amr  []string
		want []string
	}{
		{"none", nil, nil},
		{"okta mfa", []string{"pwd", "mfa", "otp"}, []string{"pwd", "mfa", "otp"}},
		{"password only", []string{"pwd"}, []string{"pwd"}},
		{"too many", slices.Repeat([]string{"otp"}, connectors.MaxAMR+1), nil},
		{"too long", []string{"pwd", strings.Repeat("m", connectors.MaxAMRValueBytes+1)}, nil},
		{"odd characters", []string{"pwd", "mfa otp"}, nil},
		{"markup", []string{"<script>"}, nil},
		{"empty value", []string{""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := idp.SetUserAMR("1001", tc.amr); err != nil {
				t.Fatal(err)
			}
			ident, err := login(t, c, "1001", connectors.Scopes{})
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if !slices.Equal(ident.AMR, tc.want) || (tc.want == nil && ident.AMR != nil) {
				t.Errorf("AMR = %q, want %q", ident.AMR, tc.want)
			}
		})
	}
}

func TestUnverifiedEmail(t *testing.T) {
	_, base := startIdP(t, "")
	ident, err := login(t, oktaConnector(t, base), "1003", connectors.Scopes{})
	if err != nil {
		t.Fatal(err)
	}
	if ident.Email != "carol@example.net" || ident.EmailVerified {
		t.Errorf("carol's e-mail should be unverified: %+v", ident)
	}
	if ident.ConnectorData != nil {
		t.Errorf("no offline access asked, yet connector data %q", ident.ConnectorData)
	}
	c := newConnector(t, Config{Issuer: base + "/oauth2/default", InsecureSkipEmailVerified: true})
	ident, err = login(t, c, "1003", connectors.Scopes{})
	if err != nil {
		t.Fatal(err)
	}
	if !ident.EmailVerified {
		t.Error("insecure_skip_email_verified did not mark the e-mail verified")
	}
}

func TestPasswordLogin(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	resp := start(t, c, connectors.Scopes{})
	if _, err := fakeidp.LoginWithPassword(context.Background(), resp.URL, "bob@example.org", "wrong"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	back, err := fakeidp.LoginWithPassword(context.Background(), resp.URL, "bob@example.org", fakeidp.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := c.HandleCallback(context.Background(), connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()})
	if err != nil || ident.Subject != "1002" {
		t.Fatalf("identity %+v, err %v", ident, err)
	}
}

func TestThinIDTokenFallsBackToUserinfo(t *testing.T) {
	idp, base := startIdP(t, "")
	idp.SetThinIDTokens(true)
	ident, err := login(t, oktaConnector(t, base), "1001", connectors.Scopes{Groups: true})
	if err != nil {
		t.Fatal(err)
	}
	if ident.Email != "alice@example.com" || !ident.EmailVerified || ident.Name != "Alice Anderson" || len(ident.Groups) != 2 {
		t.Errorf("userinfo did not fill the identity: %+v", ident)
	}
	never := newConnector(t, Config{Issuer: base + "/oauth2/default", Userinfo: UserinfoNever})
	ident, err = login(t, never, "1001", connectors.Scopes{})
	if err != nil {
		t.Fatal(err)
	}
	if ident.Email != "" || ident.Name != "" {
		t.Errorf("userinfo: never still filled claims: %+v", ident)
	}
}

func TestClaimMapping(t *testing.T) {
	_, base := startIdP(t, "")
	c := newConnector(t, Config{Issuer: base + "/oauth2/default",
		ClaimMapping: ClaimMapping{Email: "preferred_username", Name: "given_name"}, InsecureSkipEmailVerified: true})
	ident, err := login(t, c, "1002", connectors.Scopes{})
	if err != nil {
		t.Fatal(err)
	}
	if ident.Email != "bob@example.org" || ident.Name != "Bob" {
		t.Errorf("mapped identity = %+v", ident)
	}
}

func TestGoogleHostedDomain(t *testing.T) {
	_, base := startIdP(t, "ES256")
	c := newConnector(t, Config{Preset: PresetGoogle, Issuer: base, HostedDomain: "example.com"})
	resp := start(t, c, connectors.Scopes{OfflineAccess: true})
	q, _ := url.Parse(resp.URL)
	if q.Path != "/o/oauth2/v2/auth" || q.Query().Get("hd") != "example.com" ||
		q.Query().Get("access_type") != "offline" || strings.Contains(q.Query().Get("scope"), "offline_access") {
		t.Fatalf("Google authorization URL: %s", resp.URL)
	}
	ident, err := callback(t, c, resp, "1001")
	if err != nil {
		t.Fatalf("alice (hd example.com): %v", err)
	}
	if ident.Claims["hd"] != "example.com" || ident.Email != "alice@example.com" || ident.ConnectorData == nil {
		t.Errorf("identity = %+v", ident)
	}
	_, err = login(t, c, "1002", connectors.Scopes{})
	if !errors.Is(err, connectors.ErrPolicy) {
		t.Errorf("bob has no hd: got %v, want ErrPolicy", err)
	}
	if msg := connectors.UserMessage(err); msg != "Only accounts of the example.com domain can sign in here." {
		t.Errorf("bob's user message %q", msg)
	}
	open := newConnector(t, Config{Preset: PresetGoogle, Issuer: base})
	if _, err := login(t, open, "1002", connectors.Scopes{}); err != nil {
		t.Errorf("without hosted_domain bob should log in: %v", err)
	}
}

func TestUpstreamDenied(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	resp := start(t, c, connectors.Scopes{})
	back, err := fakeidp.Deny(context.Background(), resp.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.HandleCallback(context.Background(), connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()})
	if !errors.Is(err, connectors.ErrUpstreamDenied) || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("got %v, want ErrUpstreamDenied mentioning access_denied", err)
	}
}

func TestIDTokenFaults(t *testing.T) {
	idp, base := startIdP(t, "")
	c := oktaConnector(t, base)
	for _, tc := range []struct {
		fault fakeidp.Fault
		why   string // what the error must name
	}{
		{fakeidp.FaultExpired, "expired"},
		{fakeidp.FaultBadSignature, "signature"},
		{fakeidp.FaultWrongNonce, "nonce"},
		{fakeidp.FaultWrongAudience, "audience"},
		{fakeidp.FaultWrongIssuer, "issuer"},
		{fakeidp.FaultHS256, "HS256"},
	} {
		t.Run(tc.why, func(t *testing.T) {
			resp := start(t, c, connectors.Scopes{})
			idp.BreakNextIDToken(tc.fault)
			ident, err := callback(t, c, resp, "1001")
			if !errors.Is(err, connectors.ErrInvalidCallback) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %+v, %v; want ErrInvalidCallback about %s", ident, err, tc.why)
			}
		})
	}
	// The faults were one-shot: the next login works.
	if _, err := login(t, c, "1001", connectors.Scopes{}); err != nil {
		t.Fatalf("login after the faults: %v", err)
	}
}

func TestCallbackChecks(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	ctx := context.Background()

	resp := start(t, c, connectors.Scopes{})
	back, err := fakeidp.Login(ctx, resp.URL, "1001")
	if err != nil {
		t.Fatal(err)
	}
	mixup := back.Query()
	mixup.Set("iss", "https://evil.example")
	if _, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: mixup}); !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("foreign iss parameter: got %v", err)
	}
	if _, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: nil, CallbackURL: testCallback, Query: back.Query()}); !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("missing connector state: got %v", err)
	}
	if _, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: url.Values{"state": {testState}}}); !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("missing code: got %v", err)
	}

	// A tampered PKCE verifier is refused by the upstream.
	resp = start(t, c, connectors.Scopes{})
	var st loginState
	if err := json.Unmarshal(resp.ConnectorState, &st); err != nil {
		t.Fatal(err)
	}
	st.Verifier = randomString(32)
	resp.ConnectorState, _ = json.Marshal(st)
	if _, err := callback(t, c, resp, "1001"); !errors.Is(err, connectors.ErrUpstreamDenied) || !strings.Contains(err.Error(), "PKCE") {
		t.Errorf("wrong PKCE verifier: got %v", err)
	}

	// A code is redeemed once.
	resp = start(t, c, connectors.Scopes{})
	back, err = fakeidp.Login(ctx, resp.URL, "1001")
	if err != nil {
		t.Fatal(err)
	}
	req := connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()}
	if _, err := c.HandleCallback(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HandleCallback(ctx, req); !errors.Is(err, connectors.ErrUpstreamDenied) {
		t.Errorf("replayed code: got %v", err)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	idp, base := startIdP(t, "")
	c := oktaConnector(t, base)
	resp := start(t, c, connectors.Scopes{})
	idp.FailNextTokenRequest("invalid_grant")
	if _, err := callback(t, c, resp, "1001"); !errors.Is(err, connectors.ErrUpstreamDenied) || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("token endpoint invalid_grant: got %v", err)
	}

	wrongSecret := newConnector(t, Config{Issuer: base + "/oauth2/default", ClientID: testClientID, ClientSecret: "not-the-secret"})
	_, err := login(t, wrongSecret, "1001", connectors.Scopes{})
	if err == nil || errors.Is(err, connectors.ErrUpstreamDenied) || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong client secret should be a configuration error naming invalid_client, got %v", err)
	}
}

func TestDisabledUserCannotLogIn(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	resp := start(t, c, connectors.Scopes{})
	if _, err := fakeidp.Login(context.Background(), resp.URL, "1005"); err == nil {
		t.Fatal("the fake IdP let a disabled user log in")
	}
}

func TestRefresh(t *testing.T) {
	for _, flavour := range []string{"okta", "google"} {
		t.Run(flavour, func(t *testing.T) {
			idp, base := startIdP(t, "")
			c := oktaConnector(t, base)
			if flavour == "google" {
				c = newConnector(t, Config{Preset: PresetGoogle, Issuer: base})
			}
			ctx := context.Background()
			ident, err := login(t, c, "1002", connectors.Scopes{OfflineAccess: true})
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := c.Refresh(ctx, connectors.Scopes{OfflineAccess: true}, ident)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if fresh.Subject != "1002" || fresh.Email != "bob@example.org" || len(fresh.ConnectorData) == 0 {
				t.Errorf("refreshed identity = %+v", fresh)
			}
			if flavour == "okta" && string(fresh.ConnectorData) == string(ident.ConnectorData) {
				t.Error("Okta rotated the refresh token but the connector kept the old one")
			}
			if err := idp.SetUserDisabled("1002", true); err != nil {
				t.Fatal(err)
			}
			_, err = c.Refresh(ctx, connectors.Scopes{OfflineAccess: true}, fresh)
			if !errors.Is(err, connectors.ErrIdentityRevoked) {
				t.Errorf("Refresh of a disabled user: got %v, want ErrIdentityRevoked", err)
			}
		})
	}
}

func TestRefreshWithoutRefreshToken(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	ident, err := login(t, c, "1002", connectors.Scopes{})
	if err != nil {
		t.Fatal(err)
	}
	same, err := c.Refresh(context.Background(), connectors.Scopes{}, ident)
	if err != nil || same.Subject != ident.Subject {
		t.Errorf("Refresh without upstream refresh token: %+v, %v", same, err)
	}
}

func TestKeyRotation(t *testing.T) {
	idp, base := startIdP(t, "")
	c := oktaConnector(t, base)
	if _, err := login(t, c, "1001", connectors.Scopes{}); err != nil {
		t.Fatal(err)
	}
	if err := idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := login(t, c, "1001", connectors.Scopes{}); err != nil {
		t.Fatalf("login after upstream key rotation: %v", err)
	}
}

func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	idp, base := startIdP(t, "")
	c := oktaConnector(t, base)
	c.provider.kidRefetchInterval = 1 << 62 // never twice
	if _, err := login(t, c, "1001", connectors.Scopes{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := idp.RotateKey(); err != nil {
			t.Fatal(err)
		}
		// First rotation: one refetch is allowed; second: it is not.
		_, err := login(t, c, "1001", connectors.Scopes{})
		if c.provider.kidRefetchAt.IsZero() {
			t.Fatal("unknown kid did not refetch")
		}
		if err != nil && !errors.Is(err, connectors.ErrInvalidCallback) {
			t.Fatal(err)
		}
		if err != nil {
			return // the second rotation hit the limit, as it should
		}
	}
	t.Error("a second unknown kid within the interval caused another refetch")
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	_, base := startIdP(t, "")
	c := newConnector(t, Config{Issuer: base + "/"})
	_, err := c.LoginURL(context.Background(), connectors.LoginRequest{State: testState, CallbackURL: testCallback})
	if err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("discovery for another issuer: got %v", err)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	good := `{"preset":"okta","domain":"dev-1.okta.com","client_id":"a","client_secret":"b"}`
	conn, err := Open(ctx, []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.(*Connector).Issuer(); got != "https://dev-1.okta.com/oauth2/default" {
		t.Errorf("okta issuer = %q", got)
	}
	conn, err = Open(ctx, []byte(`{"preset":"okta","domain":"dev-1.okta.com","authorization_server":"aus1","client_id":"a","client_secret":"b"}`), nil)
	if err != nil || conn.(*Connector).Issuer() != "https://dev-1.okta.com/oauth2/aus1" {
		t.Errorf("okta authorization server: %v", err)
	}
	conn, err = Open(ctx, []byte(`{"preset":"google","client_id":"a","client_secret":"b"}`), nil)
	if err != nil || conn.(*Connector).Issuer() != GoogleIssuer {
		t.Errorf("google issuer: %v", err)
	}
	for name, cfg := range map[string]string{
		"unknown key":        `{"issuer":"https://idp.example","client_id":"a","client_secret":"b","scope":"x"}`,
		"no issuer":          `{"client_id":"a","client_secret":"b"}`,
		"no secret":          `{"issuer":"https://idp.example","client_id":"a"}`,
		"plain http":         `{"issuer":"http://idp.example","client_id":"a","client_secret":"b"}`,
		"unknown preset":     `{"preset":"github","client_id":"a","client_secret":"b"}`,
		"okta without host":  `{"preset":"okta","client_id":"a","client_secret":"b"}`,
		"hd without google":  `{"issuer":"https://idp.example","hosted_domain":"x.com","client_id":"a","client_secret":"b"}`,
		"symmetric alg":      `{"issuer":"https://idp.example","client_id":"a","client_secret":"b","signing_algorithms":["HS256"]}`,
		"bad userinfo mode":  `{"issuer":"https://idp.example","client_id":"a","client_secret":"b","userinfo":"sometimes"}`,
		"bad timeout":        `{"issuer":"https://idp.example","client_id":"a","client_secret":"b","timeout":"soon"}`,
		"okta domain is URL": `{"preset":"okta","domain":"https://dev-1.okta.com/","client_id":"a","client_secret":"b"}`,
	} {
		if _, err := Open(ctx, []byte(cfg), nil); err == nil {
			t.Errorf("%s: config accepted", name)
		}
	}
}

// BenchmarkFederatedLogin measures the broker side of one federated login:
// LoginURL plus HandleCallback (code redemption over loopback and ID token
// verification). The browser's trip through the fake IdP's login page, and
// the ID token signature (made when the code is issued), are outside the
// timer.
func BenchmarkFederatedLogin(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			_, base := startIdP(b, alg)
			c := oktaConnector(b, base)
			ctx := context.Background()
			if _, err := login(b, c, "1001", connectors.Scopes{}); err != nil { // warm caches
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
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
				if _, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestConcurrentFirstLogins(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base) // cold: no discovery, no keys yet
	ctx := context.Background()
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			resp, err := c.LoginURL(ctx, connectors.LoginRequest{State: testState, CallbackURL: testCallback})
			if err != nil {
				errs <- err
				return
			}
			back, err := fakeidp.Login(ctx, resp.URL, "1001")
			if err != nil {
				errs <- err
				return
			}
			_, err = c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: back.Query()})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestRealDiscoveryDocuments serves Okta's and Google's published discovery
// documents (rewritten to loopback) and checks the endpoints and the client
// authentication the connector picks from them.
func TestRealDiscoveryDocuments(t *testing.T) {
	for _, tc := range []struct {
		file, host, preset string
		methods            []string // override token_endpoint_auth_methods_supported
		wantBasic          bool
	}{
		{"okta-discovery.json", "https://dev-123456.okta.com", PresetOkta, nil, true},
		{"google-discovery.json", "https://accounts.google.com", PresetGoogle, nil, true},
		{"google-discovery.json", "https://accounts.google.com", PresetGoogle, []string{"client_secret_post"}, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "upstream", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var gotBasic, gotPost bool
			mux := http.NewServeMux()
			srv := httptest.NewServer(mux)
			defer srv.Close()
			var doc map[string]any
			rewritten := strings.NewReplacer(tc.host, srv.URL, "https://oauth2.googleapis.com", srv.URL,
				"https://openidconnect.googleapis.com", srv.URL, "https://www.googleapis.com", srv.URL).Replace(string(raw))
			if err := json.Unmarshal([]byte(rewritten), &doc); err != nil {
				t.Fatal(err)
			}
			if tc.methods != nil {
				doc["token_endpoint_auth_methods_supported"] = tc.methods
			}
			issuer := doc["issuer"].(string)
			wellKnown := strings.TrimPrefix(issuer, srv.URL) + "/.well-known/openid-configuration"
			mux.HandleFunc(wellKnown, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(doc)
			})
			tokenPath := strings.TrimPrefix(doc["token_endpoint"].(string), srv.URL)
			mux.HandleFunc(tokenPath, func(w http.ResponseWriter, r *http.Request) {
				_, _, gotBasic = r.BasicAuth()
				gotPost = r.PostFormValue("client_secret") == testClientSecret
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			})
			c := newConnector(t, Config{Preset: tc.preset, Issuer: issuer})
			resp := start(t, c, connectors.Scopes{})
			if !strings.HasPrefix(resp.URL, doc["authorization_endpoint"].(string)+"?") {
				t.Errorf("login URL %s is not at %s", resp.URL, doc["authorization_endpoint"])
			}
			_, err = c.HandleCallback(context.Background(),
				connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: url.Values{"code": {"c"}, "state": {testState}}})
			if !errors.Is(err, connectors.ErrUpstreamDenied) {
				t.Errorf("token endpoint invalid_grant: %v", err)
			}
			if gotBasic != tc.wantBasic || gotPost == tc.wantBasic {
				t.Errorf("client auth: basic=%v post=%v, want basic=%v", gotBasic, gotPost, tc.wantBasic)
			}
		})
	}
}

func TestGoogleIssuerWithoutScheme(t *testing.T) {
	google := newConnector(t, Config{Preset: PresetGoogle})
	for iss, want := range map[string]bool{
		"https://accounts.google.com": true, "accounts.google.com": true, "https://accounts.google.com/": false, "evil.example": false,
	} {
		if got := google.issuerMatches(iss); got != want {
			t.Errorf("google: issuerMatches(%q) = %v", iss, got)
		}
	}
	okta := newConnector(t, Config{Preset: PresetOkta, Domain: "accounts.google.com"})
	if okta.issuerMatches("accounts.google.com") {
		t.Error("the scheme-less alias applies to Google only")
	}
}

// countingTransport counts requests per path.
type countingTransport struct {
	base  http.RoundTripper
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func TestCachesAndExpiresKeys(t *testing.T) {
	_, base := startIdP(t, "")
	c := oktaConnector(t, base)
	counter := &countingTransport{base: c.http.Transport, paths: map[string]int{}}
	c.http.Transport = counter
	for range 3 {
		if _, err := login(t, c, "1001", connectors.Scopes{}); err != nil {
			t.Fatal(err)
		}
	}
	const jwks, disc = "/oauth2/default/v1/keys", "/oauth2/default/.well-known/openid-configuration"
	if counter.paths[jwks] != 1 || counter.paths[disc] != 1 {
		t.Fatalf("three logins fetched JWKS %d and discovery %d times, want once each", counter.paths[jwks], counter.paths[disc])
	}
	c.provider.mu.Lock()
	c.provider.keysAt = c.provider.keysAt.Add(-jwksTTL)
	c.provider.mu.Unlock()
	if _, err := login(t, c, "1001", connectors.Scopes{}); err != nil {
		t.Fatal(err)
	}
	if counter.paths[jwks] != 2 {
		t.Errorf("keys older than the TTL were not refetched (%d fetches)", counter.paths[jwks])
	}
}

// An upstream whose discovery says it sends iss (RFC 9207) must: a callback
// without it is refused before the code is redeemed.
func TestIssParameterRequiredWhenAdvertised(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	redeemed := 0
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
			"jwks_uri": srv.URL + "/keys", "authorization_response_iss_parameter_supported": true,
		})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, _ *http.Request) {
		redeemed++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
	})
	c := newConnector(t, Config{Issuer: srv.URL})
	resp := start(t, c, connectors.Scopes{})
	ctx := context.Background()
	q := url.Values{"code": {"c"}, "state": {testState}}
	_, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: q})
	if !errors.Is(err, connectors.ErrInvalidCallback) || !strings.Contains(err.Error(), "RFC 9207") || redeemed != 0 {
		t.Errorf("callback without iss: %v (code redeemed %d times), want ErrInvalidCallback before redeeming", err, redeemed)
	}
	q.Set("iss", srv.URL)
	if _, err := c.HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: testCallback, Query: q}); !errors.Is(err, connectors.ErrUpstreamDenied) || redeemed != 1 {
		t.Errorf("callback with iss: %v (code redeemed %d times), want the code redeemed (and refused upstream)", err, redeemed)
	}
}

// TestFreshLogin: ForceLogin and MaxAge reach the upstream as prompt=login
// and max_age (max_age=0 for Google), the identity reports the upstream's
// auth_time, and an answer whose auth_time is missing or older than asked
// is refused.
func TestFreshLogin(t *testing.T) {
	idp, base := startIdP(t, "")
	c := oktaConnector(t, base)
	if !c.CanReauthenticate() {
		t.Fatal("the OIDC connector does not declare it can force a sign-in")
	}
	hour := time.Hour
	startFresh := func(c *Connector, force bool, maxAge *time.Duration) connectors.LoginResponse {
		t.Helper()
		resp, err := c.LoginURL(context.Background(), connectors.LoginRequest{State: testState, CallbackURL: testCallback,
			ForceLogin: force, MaxAge: maxAge})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		c               *Connector
		force           bool
		maxAge          *time.Duration
		prompt, maxAgeQ string
	}{
		{c, true, nil, "login", "0"},
		{c, false, &hour, "", "3600"},
		{newConnector(t, Config{Preset: PresetGoogle, Issuer: base}), true, nil, "", "0"},
	} {
		resp := startFresh(tc.c, tc.force, tc.maxAge)
		u, _ := url.Parse(resp.URL)
		if q := u.Query(); q.Get("prompt") != tc.prompt || q.Get("max_age") != tc.maxAgeQ {
			t.Errorf("%s force=%v: prompt %q max_age %q, want %q %q", tc.c.cfg.Preset, tc.force, q.Get("prompt"), q.Get("max_age"), tc.prompt, tc.maxAgeQ)
		}
	}
	before := time.Now().Truncate(time.Second)
	ident, err := callback(t, c, startFresh(c, true, nil), "1002")
	if err != nil {
		t.Fatalf("fresh login: %v", err)
	}
	if ident.AuthTime.Before(before) || ident.AuthTime.After(time.Now()) {
		t.Errorf("AuthTime %s, want the upstream's sign-in just now", ident.AuthTime)
	}

	idp.BreakNextIDToken(fakeidp.FaultNoAuthTime)
	if _, err := callback(t, c, startFresh(c, true, nil), "1002"); !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("fresh login without auth_time: %v, want ErrInvalidCallback", err)
	}
	// Without freshness asked, a missing auth_time is no error.
	idp.BreakNextIDToken(fakeidp.FaultNoAuthTime)
	if ident, err := login(t, c, "1002", connectors.Scopes{}); err != nil || !ident.AuthTime.IsZero() {
		t.Errorf("plain login without auth_time: %v, AuthTime %s", err, ident.AuthTime)
	}
	// An upstream sign-in older than asked for (the connector's clock is
	// ten minutes ahead: the upstream's session looks ten minutes old).
	late := oktaConnector(t, base)
	late.now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	if _, err := callback(t, late, startFresh(late, true, nil), "1002"); !errors.Is(err, connectors.ErrInvalidCallback) || !strings.Contains(err.Error(), "the upstream's is from") {
		t.Errorf("an upstream sign-in older than asked: %v, want ErrInvalidCallback", err)
	}
}
