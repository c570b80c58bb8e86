package rp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

type answer struct {
	status  int
	wwwAuth string
	body    struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Subject     string `json:"sub"`
	}
}

func call(t *testing.T, url, authorization string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, wwwAuth: resp.Header.Get("WWW-Authenticate")}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("%s: body is not JSON: %v", url, err)
	}
	return a
}

// claimsHandler answers with the subject it found in the context.
func claimsHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := rp.ClaimsFromContext(r.Context())
		if !ok {
			t.Error("handler ran without claims in the context")
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject})
	})
}

func TestMiddlewareNetHTTP(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss, rp.WithRealm("shop"))
	mux := http.NewServeMux()
	mux.Handle("/profile", v.Middleware(claimsHandler(t)))
	mux.Handle("/checkout", v.Middleware(rp.RequireScope("checkout")(claimsHandler(t))))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	plain := iss.Token("alice", testAudience, "openid profile")
	shopper := iss.Token("bob", testAudience, "openid checkout")
	expired := iss.Sign(rptest.Claims{"aud": testAudience, "exp": time.Now().Add(-time.Hour).Unix()})

	cases := []struct {
		name, path, auth string
		status           int
		wwwAuth, error   string
		subject          string
	}{
		{"no header", "/profile", "", 401, `Bearer realm="shop"`, "unauthorized", ""},
		{"other scheme", "/profile", "Basic YTpi", 401, `Bearer realm="shop"`, "unauthorized", ""},
		{"empty bearer", "/profile", "Bearer ", 400, `Bearer realm="shop", error="invalid_request", error_description="malformed Authorization header"`, "invalid_request", ""},
		{"garbage", "/profile", "Bearer abc", 401, `Bearer realm="shop", error="invalid_token", error_description="malformed"`, "invalid_token", ""},
		{"expired", "/profile", "Bearer " + expired, 401, `Bearer realm="shop", error="invalid_token", error_description="expired"`, "invalid_token", ""},
		{"valid", "/profile", "Bearer " + plain, 200, "", "", "alice"},
		{"scheme any case", "/profile", "bearer " + plain, 200, "", "", "alice"},
		{"missing scope", "/checkout", "Bearer " + plain, 403, `Bearer realm="shop", error="insufficient_scope", error_description="the token lacks scope checkout", scope="checkout"`, "insufficient_scope", ""},
		{"scope granted", "/checkout", "Bearer " + shopper, 200, "", "", "bob"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, srv.URL+tc.path, tc.auth)
			if a.status != tc.status || a.wwwAuth != tc.wwwAuth || a.body.Error != tc.error || a.body.Subject != tc.subject {
				t.Fatalf("got %d %q %+v\nwant %d %q error=%q sub=%q", a.status, a.wwwAuth, a.body,
					tc.status, tc.wwwAuth, tc.error, tc.subject)
			}
		})
	}
}

func TestMiddlewareGorillaMux(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	router := mux.NewRouter()
	api := router.PathPrefix("/api").Subrouter()
	api.Use(v.Middleware)
	api.Handle("/profile", claimsHandler(t))
	checkout := api.PathPrefix("/checkout").Subrouter()
	checkout.Use(rp.RequireScope("checkout"))
	checkout.Handle("", claimsHandler(t))
	srv := httptest.NewServer(router)
	defer srv.Close()

	if a := call(t, srv.URL+"/api/profile", ""); a.status != 401 || a.wwwAuth != `Bearer realm="api"` {
		t.Errorf("no token: %d %q", a.status, a.wwwAuth)
	}
	token := iss.Token("carol", testAudience, "profile")
	if a := call(t, srv.URL+"/api/profile", "Bearer "+token); a.status != 200 || a.body.Subject != "carol" {
		t.Errorf("profile: %d %+v", a.status, a.body)
	}
	if a := call(t, srv.URL+"/api/checkout", "Bearer "+token); a.status != 403 || a.body.Error != "insufficient_scope" {
		t.Errorf("checkout without scope: %d %+v", a.status, a.body)
	}
	if a := call(t, srv.URL+"/api/checkout", "Bearer "+iss.Token("carol", testAudience, "checkout")); a.status != 200 {
		t.Errorf("checkout with scope: %d %+v", a.status, a.body)
	}
}

func TestMiddlewareKeysUnavailable(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, rp.WithClock(clk.Now))
	srv := httptest.NewServer(v.Middleware(claimsHandler(t)))
	defer srv.Close()
	iss.SetDown(true)
	iss.Rotate(jose.ES256)
	clk.Advance(time.Minute)
	a := call(t, srv.URL, "Bearer "+iss.Token("dave", testAudience, ""))
	if a.status != http.StatusServiceUnavailable || a.body.Error != "temporarily_unavailable" {
		t.Fatalf("got %d %+v, want 503 temporarily_unavailable", a.status, a.body)
	}
}

func TestRequireScopeWithoutMiddleware(t *testing.T) {
	srv := httptest.NewServer(rp.RequireScope("checkout")(http.NotFoundHandler()))
	defer srv.Close()
	if a := call(t, srv.URL, ""); a.status != 401 {
		t.Fatalf("status %d, want 401", a.status)
	}
}

func TestContextWithClaims(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req = req.WithContext(rp.ContextWithClaims(req.Context(), &rp.Claims{Subject: "eve", Scopes: []string{"checkout"}}))
	rp.RequireScope("checkout")(claimsHandler(t)).ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	c, _ := rp.ClaimsFromContext(req.Context())
	if out, err := json.Marshal(c); err != nil || string(out) != `{"sub":"eve","scope":"checkout"}` {
		t.Fatalf("hand-built claims marshal to %s, %v", out, err)
	}
}
