package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// upstreamTokens returns the upstream tokens a connector keeps for the
// identity (connector-oidc: the refresh token; connector-facebook: the
// access token), from its connector data in clear.
func upstreamTokens(t *testing.T, e *env, id *storage.Identity) []string {
	t.Helper()
	data, err := federation.OpenConnectorData(e.fed, id)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("connector data of %s: %v (%q)", id.ConnectorID, err, data)
	}
	var toks []string
	for _, v := range m {
		if s, ok := v.(string); ok && len(s) >= 8 {
			toks = append(toks, s)
		}
	}
	if len(toks) == 0 {
		t.Fatalf("connector data of %s holds no token: %q", id.ConnectorID, data)
	}
	return toks
}

// rawConnectorData reads the connector_data column as the database holds
// it, without the broker.
func rawConnectorData(t *testing.T, e *env) [][]byte {
	t.Helper()
	return storagetest.Column(t, e.store, "identities", "connector_data")
}

// TestConnectorDataEncryptedAtRest: the upstream tokens connectors keep
// (Okta's refresh token, Facebook's access token) are not in the database
// in clear: not in the identities table, and (SQLite) nowhere in the
// database file or its write-ahead log. A refresh keeps them encrypted.
func TestConnectorDataEncryptedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, envOptions{backend: b})
		okta, _ := e.login(e.browser(), "okta", "1002")
		e.login(e.browser(), "facebook", "1002")
		if err := e.fed.Refresh(ctx, okta["sub"].(string), "okta"); err != nil {
			t.Fatal(err)
		}
		var secrets []string
		for _, c := range []string{"okta", "facebook"} {
			id, err := e.store.GetIdentity(ctx, c, "1002")
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, upstreamTokens(t, e, id)...)
		}
		raw := rawConnectorData(t, e)
		if len(raw) != 2 {
			t.Fatalf("%d identities, want 2", len(raw))
		}
		for _, r := range raw {
			for _, s := range secrets {
				if bytes.Contains(r, []byte(s)) {
					t.Errorf("an upstream token is stored in clear: %q", r)
				}
			}
			if bytes.Contains(r, []byte("token")) {
				t.Errorf("connector data readable in the database: %q", r)
			}
		}
		if b.Name != storage.DialectSQLite {
			return
		}
		path := strings.TrimPrefix(strings.SplitN(e.dsn, "?", 2)[0], "sqlite:")
		for _, f := range []string{path, path + "-wal"} {
			content, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if bytes.Contains(content, []byte(s)) {
					t.Errorf("an upstream token is in clear in %s", f)
				}
			}
		}
	})
}

// TestConnectorDataWrittenInClearStillReads: identities stored before the
// broker encrypted connector data hold it in clear; they still refresh
// upstream, the refresh stores the data encrypted, and so does the start
// of a broker (federation.New).
func TestConnectorDataWrittenInClearStillReads(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, envOptions{backend: b, connectors: oktaOnly})
		claims, _ := e.login(e.browser(), "okta", "1002")
		id, err := e.store.GetIdentity(ctx, "okta", "1002")
		if err != nil {
			t.Fatal(err)
		}
		clear, err := federation.OpenConnectorData(e.fed, id)
		if err != nil {
			t.Fatal(err)
		}
		id.ConnectorData = clear // as an older broker wrote it
		if err := e.store.UpsertIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
		if raw := rawConnectorData(t, e); len(raw) != 1 || !bytes.Equal(raw[0], clear) {
			t.Fatalf("set-up: stored %q", raw)
		}
		// The refresh uses the upstream refresh token written in clear
		// (the fake upstream accepts only the one it issued).
		if err := e.fed.Refresh(ctx, claims["sub"].(string), "okta"); err != nil {
			t.Fatalf("refresh with connector data written in clear: %v", err)
		}
		raw := rawConnectorData(t, e)
		if len(raw) != 1 || bytes.Contains(raw[0], []byte("refresh_token")) {
			t.Fatalf("after the refresh the connector data is still in clear: %q", raw)
		}
		// And it keeps working.
		if err := e.fed.Refresh(ctx, claims["sub"].(string), "okta"); err != nil {
			t.Fatalf("second refresh: %v", err)
		}

		// A broker starting over rows written in clear encrypts them
		// at once, and they still refresh.
		id, err = e.store.GetIdentity(ctx, "okta", "1002")
		if err != nil {
			t.Fatal(err)
		}
		if id.ConnectorData, err = federation.OpenConnectorData(e.fed, id); err != nil {
			t.Fatal(err)
		}
		if err := e.store.UpsertIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
		restarted, err := federation.New(ctx, federation.Config{Store: e.store, Issuer: e.issuer, DataKey: e.dataKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { restarted.Close() })
		raw = rawConnectorData(t, e)
		if len(raw) != 1 || bytes.Contains(raw[0], []byte("refresh_token")) {
			t.Fatalf("after a start the connector data is still in clear: %q", raw)
		}
		if err := e.fed.Refresh(ctx, claims["sub"].(string), "okta"); err != nil {
			t.Fatalf("refresh after the start encrypted the data: %v", err)
		}
	})
}
