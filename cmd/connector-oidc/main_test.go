package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/plugins"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const callbackURL = "http://127.0.0.1:8080/callback/okta"

// TestPluginProcess runs connector-oidc as a real plugin process against
// fakeidp: a login, an upstream fault and a refresh of a disabled user, with
// the connector errors surviving the trip through gRPC.
func TestPluginProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches the plugin binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := testenv.Binary(t, "./cmd/connector-oidc")
	cfg := fakeidp.DemoConfig()
	cfg.Clients = []fakeidp.Client{{ID: "bk", Secret: "bk-secret", RedirectURIs: []string{callbackURL}}}
	idp, err := fakeidp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idp)
	defer srv.Close()
	conf, _ := json.Marshal(map[string]any{
		"preset": "okta", "issuer": srv.URL + "/oauth2/default", "client_id": "bk", "client_secret": "bk-secret",
	})
	p, err := plugins.Launch(ctx, plugins.Config{ID: "okta", Path: bin, Config: conf}, nil)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	defer p.Close()
	if !p.Info().Refresh {
		t.Error("the plugin does not announce Refresh")
	}

	login := func(subject string) (connectors.Identity, error) {
		resp, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "state-0123456789", CallbackURL: callbackURL,
			Scopes: connectors.Scopes{OfflineAccess: true, Groups: true}})
		if err != nil {
			t.Fatalf("LoginURL: %v", err)
		}
		back, err := fakeidp.Login(ctx, resp.URL, subject)
		if err != nil {
			t.Fatalf("fake IdP login: %v", err)
		}
		return p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: callbackURL, Query: back.Query()})
	}
	ident, err := login("1002")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if ident.Subject != "1002" || ident.Email != "bob@example.org" || !ident.EmailVerified || len(ident.Groups) != 1 || len(ident.ConnectorData) == 0 {
		t.Errorf("identity = %+v", ident)
	}
	idp.BreakNextIDToken(fakeidp.FaultWrongNonce)
	if _, err := login("1002"); !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("wrong nonce through the plugin: %v", err)
	}
	if _, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{OfflineAccess: true}, ident); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := idp.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	// Okta rotated the refresh token; the old one is gone too, so either
	// way the upstream refuses.
	if _, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{OfflineAccess: true}, ident); !errors.Is(err, connectors.ErrIdentityRevoked) {
		t.Errorf("Refresh of a disabled user through the plugin: %v", err)
	}
}
