package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/plugins"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const callbackURL = "http://127.0.0.1:8080/callback/facebook"

// TestPluginProcess runs connector-facebook as a real plugin process
// against fakeidp.
func TestPluginProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and launches the plugin binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := testenv.Binary(t, "./cmd/connector-facebook")
	cfg := fakeidp.DemoConfig()
	cfg.Clients = []fakeidp.Client{{ID: "4242", Secret: "app-secret", RedirectURIs: []string{callbackURL}}}
	idp, err := fakeidp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(idp)
	defer srv.Close()
	conf, _ := json.Marshal(map[string]any{
		"client_id": "4242", "client_secret": "app-secret", "dialog_url": srv.URL, "graph_url": srv.URL, "trust_email": true,
	})
	p, err := plugins.Launch(ctx, plugins.Config{ID: "facebook", Path: bin, Config: conf}, nil)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	defer p.Close()

	login := func(subject string) (connectors.Identity, error) {
		resp, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "state-0123456789", CallbackURL: callbackURL})
		if err != nil {
			t.Fatalf("LoginURL: %v", err)
		}
		back, err := fakeidp.Login(ctx, resp.URL, subject)
		if err != nil {
			t.Fatalf("fake Facebook login: %v", err)
		}
		return p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: resp.ConnectorState, CallbackURL: callbackURL, Query: back.Query()})
	}
	ident, err := login("1001")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if ident.Subject != "1001" || ident.Email != "alice@example.com" || !ident.EmailVerified {
		t.Errorf("identity = %+v", ident)
	}
	_, err = login("1004")
	if !errors.Is(err, connectors.ErrPolicy) || !strings.Contains(err.Error(), "did not share an e-mail address") {
		t.Errorf("missing e-mail through the plugin: %v", err)
	}
	if err := idp.SetUserDisabled("1001", true); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{}, ident); !errors.Is(err, connectors.ErrIdentityRevoked) {
		t.Errorf("Refresh of a disabled user through the plugin: %v", err)
	}
}
