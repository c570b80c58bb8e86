package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

const (
	audience = "http://127.0.0.1:9090"
	appURL   = "http://127.0.0.1:5173"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startAPI(t *testing.T, opts ...rp.Option) (*rptest.Issuer, *httptest.Server) {
	t.Helper()
	iss := rptest.NewIssuer(t)
	opts = append([]rp.Option{rp.WithAudience(audience), rp.WithLogger(quiet)}, opts...)
	v, err := rp.NewVerifier(t.Context(), iss.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(v, []string{appURL}, quiet))
	t.Cleanup(srv.Close)
	return iss, srv
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, method, url string, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, header: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return r
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func TestHealthNeedsNoToken(t *testing.T) {
	_, srv := startAPI(t)
	if r := do(t, "GET", srv.URL+"/api/health", nil); r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("health: %d %v", r.status, r.body)
	}
}

func TestProfile(t *testing.T) {
	iss, srv := startAPI(t)
	r := do(t, "GET", srv.URL+"/api/profile", nil)
	if r.status != 401 || r.header.Get("WWW-Authenticate") != `Bearer realm="api"` {
		t.Fatalf("no token: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	r = do(t, "GET", srv.URL+"/api/profile", bearer(iss.Token("alice", "https://another.api", "openid")))
	if r.status != 401 || r.body["error"] != "invalid_token" {
		t.Fatalf("token for another API: %d %v", r.status, r.body)
	}
	r = do(t, "GET", srv.URL+"/api/profile", bearer(iss.Sign(rptest.Claims{
		"sub": "alice", "aud": audience, "scope": "openid profile", "email": "alice@example.test"})))
	if r.status != 200 || r.body["sub"] != "alice" {
		t.Fatalf("profile: %d %v", r.status, r.body)
	}
	claims, _ := r.body["claims"].(map[string]any)
	if claims["email"] != "alice@example.test" || claims["iss"] != iss.URL {
		t.Errorf("claims echoed = %v", claims)
	}
	if scopes, _ := r.body["scopes"].([]any); len(scopes) != 2 {
		t.Errorf("scopes = %v", r.body["scopes"])
	}
}

func TestCheckoutNeedsScope(t *testing.T) {
	iss, srv := startAPI(t)
	r := do(t, "POST", srv.URL+"/api/checkout", bearer(iss.Token("bob", audience, "openid profile")))
	if r.status != 403 || r.body["error"] != "insufficient_scope" ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), `scope="checkout"`) {
		t.Fatalf("without scope: %d %v %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	for _, method := range []string{"GET", "POST"} {
		r = do(t, method, srv.URL+"/api/checkout", bearer(iss.Token("bob", audience, "openid checkout")))
		if r.status != 200 || r.body["status"] != "ordered" || r.body["sub"] != "bob" {
			t.Fatalf("%s with scope: %d %v", method, r.status, r.body)
		}
	}
}

func TestCORS(t *testing.T) {
	iss, srv := startAPI(t)
	preflight := map[string]string{"Origin": appURL, "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization"}
	r := do(t, "OPTIONS", srv.URL+"/api/checkout", preflight)
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != appURL ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	preflight["Access-Control-Request-Headers"] = "authorization,dpop"
	if r := do(t, "OPTIONS", srv.URL+"/api/checkout", preflight); r.status != 204 ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "DPoP") {
		t.Fatalf("preflight for a DPoP request: %d %v", r.status, r.header)
	}
	preflight["Origin"] = "http://evil.test"
	if r := do(t, "OPTIONS", srv.URL+"/api/checkout", preflight); r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", r.status, r.header)
	}

	// The app can read error answers too, WWW-Authenticate included.
	r = do(t, "GET", srv.URL+"/api/profile", map[string]string{"Origin": appURL})
	if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != appURL ||
		r.header.Get("Access-Control-Expose-Headers") != "WWW-Authenticate, DPoP-Nonce" {
		t.Fatalf("401 to the app: %d %v", r.status, r.header)
	}
	h := bearer(iss.Token("carol", audience, ""))
	h["Origin"] = "http://evil.test"
	if r := do(t, "GET", srv.URL+"/api/profile", h); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS header for a foreign origin: %v", r.header)
	}
}

// TestDPoPRequiredForTheDemoClient runs the API as the demo does
// (--dpop-required-client demo): the demo client's tokens are good only
// DPoP-bound and with their proof; another client's bearer token still
// works.
func TestDPoPRequiredForTheDemoClient(t *testing.T) {
	iss := rptest.NewIssuer(t)
	base, _ := startRun(t, t.Context(), iss, "--dpop-required-client", "demo")
	profile := base + "/api/profile"
	key := rptest.NewProofKey(t, jose.ES256)
	claims := rptest.Claims{"sub": "alice", "aud": audience, "client_id": "demo"}
	unbound := iss.Sign(claims)
	claims["cnf"] = map[string]string{"jkt": key.Thumbprint()}
	bound := iss.Sign(claims)

	if r := do(t, "GET", profile, bearer(unbound)); r.status != 401 || r.body["error"] != "invalid_token" ||
		!strings.HasPrefix(r.header.Get("WWW-Authenticate"), "DPoP ") {
		t.Errorf("demo client, unbound token: %d %v %q, want 401 invalid_token (DPoP)", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	if r := do(t, "GET", profile, bearer(bound)); r.status != 401 || r.body["error"] != "invalid_token" {
		t.Errorf("demo client, bound token as Bearer: %d %v", r.status, r.body)
	}
	if r := do(t, "GET", profile, map[string]string{"Authorization": "DPoP " + bound}); r.status != 401 || r.body["error"] != "invalid_dpop_proof" {
		t.Errorf("demo client, bound token without proof: %d %v", r.status, r.body)
	}
	withProof := map[string]string{"Authorization": "DPoP " + bound, "DPoP": key.Proof("GET", profile, bound)}
	if r := do(t, "GET", profile, withProof); r.status != 200 || r.body["sub"] != "alice" {
		t.Errorf("demo client, bound token with its proof: %d %v", r.status, r.body)
	}
	if r := do(t, "GET", profile, bearer(iss.Token("bob", audience, ""))); r.status != 200 || r.body["sub"] != "bob" {
		t.Errorf("another client's bearer token: %d %v", r.status, r.body)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{
		"EXAMPLE_API_ISSUER":         "http://127.0.0.1:8080",
		"EXAMPLE_API_ALLOWED_ORIGIN": "http://a.test, http://b.test/",
		"EXAMPLE_API_ISSUER_WAIT":    "3s",
	}
	env["EXAMPLE_API_DPOP_REQUIRED_CLIENT"] = "demo, spa"
	o, err := parseFlags([]string{"--audience", "api://shop", "--allowed-origin", "http://c.test", "--dpop-required-client", "cli",
		"--public-url", "https://api.example.test"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.issuer != "http://127.0.0.1:8080" || o.audience != "api://shop" || o.listen != "127.0.0.1:9090" ||
		strings.Join(o.allowedOrigins, " ") != "http://a.test http://b.test http://c.test" ||
		o.issuerWait.String() != "3s" || o.refetchInterval != rp.DefaultRefetchInterval ||
		strings.Join(o.dpopClients, " ") != "demo spa cli" || o.publicURL != "https://api.example.test" || o.dpopRequired {
		t.Fatalf("options = %+v", o)
	}
	if _, err := parseFlags(nil, func(string) string { return "" }); err == nil {
		t.Fatal("missing issuer accepted")
	}
	if _, err := parseFlags([]string{"--issuer", "x", "extra"}, func(string) string { return "" }); err == nil {
		t.Fatal("stray argument accepted")
	}
}

// addrHandler passes the address of the "listening" log record to a channel.
type addrHandler struct {
	slog.Handler
	addr chan string
}

func (h addrHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				h.addr <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

// startRun runs the API as its main does, against iss, until ctx ends, and
// returns its base URL and run's result.
func startRun(t *testing.T, ctx context.Context, iss *rptest.Issuer, args ...string) (string, <-chan error) {
	t.Helper()
	addr := make(chan string, 1)
	logger := slog.New(addrHandler{Handler: quiet.Handler(), addr: addr})
	done := make(chan error, 1)
	args = append([]string{"--issuer", iss.URL, "--audience", audience, "--listen", "127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, args, func(string) string { return "" }, logger) }()
	select {
	case a := <-addr:
		return "http://" + a, done
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	}
	return "", nil
}

func TestRunServesAndStops(t *testing.T) {
	iss := rptest.NewIssuer(t)
	ctx, cancel := context.WithCancel(t.Context())
	base, done := startRun(t, ctx, iss)
	if r := do(t, "GET", base+"/api/profile", bearer(iss.Token("dan", audience, ""))); r.status != 200 {
		t.Fatalf("profile: %d %v", r.status, r.body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
