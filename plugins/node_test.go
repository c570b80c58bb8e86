package plugins

import (
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// TestNodeConnector launches the Node.js connector in
// testdata/node-connector through the host and logs a user in: the
// contract is connector.proto and go-plugin's handshake, not Go.
func TestNodeConnector(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "node-connector"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the Node connector test needs node and `npm ci --prefix testdata/node-connector`")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js")); err != nil {
		t.Skip("testdata/node-connector/node_modules is missing: run `npm ci --prefix testdata/node-connector`")
	}
	ctx := testContext(t)
	script := filepath.Join(dir, "connector.js")
	p, sink := launchTest(t, func(c *Config) {
		c.ID = "node"
		c.Path = script
		c.SHA256 = sha256File(t, script)
		c.DisableAutoMTLS = true
		c.Config = []byte(`{"issuer":"https://node-idp.test","users":{
			"ann":{"sub":"node-ann","email":"ann@example.test","name":"Ann","groups":["ops"]},
			"noemail":{"sub":"node-x"},
			"gone":{"sub":"node-gone","email":"gone@example.test","disabled":true}}}`)
	})

	info := p.Info()
	if info.SDK != "node" || !info.Refresh || info.Name != "bridgekeeper-node-connector" {
		t.Errorf("Info() = %+v", info)
	}
	if err := p.Healthy(ctx); err != nil {
		t.Fatalf("Healthy: %v", err)
	}

	login, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{
		State:       "st-node",
		CallbackURL: "https://broker.test/callback/node",
		Scopes:      connectors.Scopes{OfflineAccess: true},
	})
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	u, err := url.Parse(login.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "node-idp.test" || u.Query().Get("state") != "st-node" || u.Query().Get("scope") != "openid offline_access" ||
		u.Query().Get("redirect_uri") != "https://broker.test/callback/node" {
		t.Errorf("login URL = %s", login.URL)
	}

	id, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: login.ConnectorState, CallbackURL: "https://broker.test/callback/node",
		Query: url.Values{"code": {"ann"}, "state": {"st-node"}},
	})
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	if id.Subject != "node-ann" || id.Email != "ann@example.test" || !id.EmailVerified || id.Name != "Ann" ||
		len(id.Groups) != 1 || id.Groups[0] != "ops" || id.Claims["runtime"] != "node" || string(id.ConnectorData) != "ann" {
		t.Errorf("identity = %+v", id)
	}
	if _, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{}, id); err != nil {
		t.Errorf("Refresh: %v", err)
	}

	callback := func(q url.Values) error {
		_, err := p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: login.ConnectorState, CallbackURL: "https://broker.test/callback/node", Query: q})
		return err
	}
	if err := callback(url.Values{"error": {"access_denied"}}); !errors.Is(err, connectors.ErrUpstreamDenied) {
		t.Errorf("upstream error: %v, want ErrUpstreamDenied", err)
	}
	if err := callback(url.Values{"code": {"forged"}}); !errors.Is(err, connectors.ErrInvalidCallback) {
		t.Errorf("unknown code: %v, want ErrInvalidCallback", err)
	}
	// The plugin sends FAILED_PRECONDITION without a reason here, and a
	// user message in an ErrorDetail it serialized itself.
	err = callback(url.Values{"code": {"noemail"}})
	if !errors.Is(err, connectors.ErrPolicy) || !strings.Contains(err.Error(), "has no e-mail") {
		t.Errorf("user without e-mail: %v, want ErrPolicy", err)
	}
	if msg := connectors.UserMessage(err); msg != "Add an e-mail address to your account there, then sign in again." {
		t.Errorf("user message %q", msg)
	}
	_, err = p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{}, connectors.Identity{Subject: "node-gone", ConnectorData: []byte("gone")})
	if !errors.Is(err, connectors.ErrIdentityRevoked) {
		t.Errorf("Refresh of a disabled user: %v, want ErrIdentityRevoked", err)
	}

	r := sink.wait(ctx, t, messageIs("login started"))
	if r.Attrs["connector"] != "node" || r.Attrs["state"] != "st-node" {
		t.Errorf("log record = %+v, want connector=node state=st-node", r)
	}

	pid := pidOf(t, sink, 1)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("node process %d still exists after Close: %v", pid, err)
	}
}

// A plugin that serves plaintext gRPC, launched with auto mTLS on, fails
// with an error that says what to set.
func TestNodeConnectorWithoutMTLSHint(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "node-connector"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js")); err != nil {
		t.Skip("testdata/node-connector/node_modules is missing: run `npm ci --prefix testdata/node-connector`")
	}
	_, err = Launch(testContext(t), Config{ID: "node", Path: filepath.Join(dir, "connector.js"), Config: []byte(`{"issuer":"https://node-idp.test"}`)}, nil)
	if err == nil || !strings.Contains(err.Error(), "needs auto_mtls: false on its connector") {
		t.Errorf("Launch with auto mTLS: %v", err)
	}
}
