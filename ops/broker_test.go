package ops_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv/brokerenv"
	"github.com/bridgekeeper/bridgekeeper/ops"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestWrapTheBroker wires ops around the real broker the way serve does
// (see docs/ops.md) and checks what an operator sees: route-template
// metrics, grant outcomes, key age, readiness, request ids in the broker's
// own log lines.
func TestWrapTheBroker(t *testing.T) {
	logs := &syncbuf.Buffer{}
	log := slog.New(ops.LogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	m := ops.NewMetrics()
	b := brokerenv.Start(t, brokerenv.Options{
		Secret: strings.Repeat("ops-test-secret-", 3),
		Logger: log,
		Keys:   keys.Options{Algorithm: "ES256", MaxTokenLifetime: keys.DefaultMaxTokenLifetime, Logger: slog.New(slog.DiscardHandler)},
		Config: func(c *broker.Config) { c.GrantObserver = m.ObserveGrant },
		Handler: func(b *brokerenv.Broker) http.Handler {
			router, ok := b.Server.Handler().(*mux.Router)
			if !ok {
				t.Fatalf("broker handler is a %T, not a *mux.Router", b.Server.Handler())
			}
			health := ops.NewHealth(log, ops.DatabaseCheck(b.Store.Ping), ops.MigrationsCheck(b.Store.MigrationStatus))
			return ops.Wrap(b.Server.Handler(), ops.Options{Logger: log, Metrics: m, MetricsPath: "/metrics",
				Health: health, Route: ops.MuxRoute(router)})
		},
	})
	store, km, issuer := b.Store, b.Keys, b.Issuer
	b.CreateClient(t, &storage.Client{
		ID: "svc", Name: "svc", TokenEndpointAuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"}, Scopes: []string{"jobs"},
	}, "svc-secret-0123456789abcdefghijklmnop")
	if err := m.RegisterDatabase(store.Ping, store.PoolStats); err != nil {
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
