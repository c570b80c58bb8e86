package ops_test

import (
	"context"
	"encoding/json"
	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/ops"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestWrapTheBroker wires ops around the real broker the way serve does
// (see docs/ops.md) and checks what an operator sees: route-template
// metrics, grant outcomes, key age, readiness, request ids in the broker's
// own log lines.
func TestWrapTheBroker(t *testing.T) {
	ctx := context.Background()
	store, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(t)
	sec, err := secret.Parse(strings.Repeat("ops-test-secret-", 3))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(ops.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	km, err := keys.New(ctx, store, keys.Options{Algorithm: "ES256", EncryptionKey: sec.Derive(secret.PurposeKeyEncryption)})
	if err != nil {
		t.Fatal(err)
	}
	hasher := password.ClientSecretHasher{Key: sec.Derive(secret.PurposeClientSecret)}
	hash, err := hasher.Hash(ctx, []byte("svc-secret-0123456789abcdefghijklmnop"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, &storage.Client{
		ID: "svc", Name: "svc", SecretHash: hash, TokenEndpointAuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"}, Scopes: []string{"jobs"},
	}); err != nil {
		t.Fatal(err)
	}

	m := ops.NewMetrics()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	srv, err := broker.New(ctx, broker.Config{Issuer: issuer, Store: store, Secret: sec, Logger: log, Keys: km,
		GrantObserver: m.ObserveGrant})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterDatabase(store.Ping, store.DB().DB); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterSigningKeyAge(func(ctx context.Context) (time.Time, error) {
		infos, err := km.List(ctx)
		if err != nil {
			return time.Time{}, err
		}
		return infos[0].Created, nil // current key first
	}); err != nil {
		t.Fatal(err)
	}
	health := ops.NewHealth(log, ops.DatabaseCheck(store.Ping), ops.MigrationsCheck(store.MigrationStatus))
	router, ok := srv.Handler().(*mux.Router)
	if !ok {
		t.Fatalf("broker handler is a %T, not a *mux.Router", srv.Handler())
	}
	ts.Config.Handler = ops.Wrap(srv.Handler(), ops.Options{Logger: log, Metrics: m, MetricsPath: "/metrics",
		Health: health, Route: ops.MuxRoute(router)})
	ts.Start()
	defer ts.Close()

	token := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(ops.HeaderRequestID, "req-"+url.QueryEscape(body)[:8])
		req.SetBasicAuth("svc", "svc-secret-0123456789abcdefghijklmnop")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := token("grant_type=client_credentials&scope=jobs"); code != http.StatusOK {
		t.Fatalf("client_credentials: %d\n%s", code, logs)
	}
	if code := token("grant_type=refresh_token&refresh_token=nope.nope"); code != http.StatusBadRequest {
		t.Errorf("bogus refresh: %d", code)
	}
	for _, path := range []string{"/.well-known/jwks.json", "/readyz", "/healthz", "/nothing-here"} {
		res, err := http.Get(issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		want := http.StatusOK
		if path == "/nothing-here" {
			want = http.StatusNotFound
		}
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}

	res, err := http.Get(issuer + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`bridgekeeper_http_requests_total{code="200",method="POST",route="/oauth2/token"} 1`,
		`bridgekeeper_http_requests_total{code="400",method="POST",route="/oauth2/token"} 1`,
		`bridgekeeper_http_requests_total{code="200",method="GET",route="/.well-known/jwks.json"} 1`,
		`bridgekeeper_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`bridgekeeper_token_grants_total{grant_type="client_credentials",outcome="ok"} 1`,
		`bridgekeeper_token_grants_total{grant_type="refresh_token",outcome="unauthorized_client"} 1`,
		`bridgekeeper_http_requests_total{code="200",method="GET",route="/readyz"} 1`,
		`bridgekeeper_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`bridgekeeper_database_up 1`,
		`bridgekeeper_signing_key_age_seconds `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The broker's own log line about the refused refresh carries the
	// request id the client sent.
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "token refused" {
			found = rec["request_id"] == "req-grant_ty"
		}
	}
	if !found {
		t.Errorf("the broker's \"token refused\" line lacks the request id:\n%s", logs)
	}
}
