package rp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// dpopAnswer is the middleware's answer to one request.
type dpopAnswer struct {
	status     int
	challenges []string
	nonce      string
	body       struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Subject     string `json:"sub"`
	}
}

// dpopCall sends method url with "Authorization: scheme token" and the
// given DPoP headers.
func dpopCall(t *testing.T, method, url, scheme, token string, proofs ...string) dpopAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", scheme+" "+token)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := dpopAnswer{status: resp.StatusCode, challenges: resp.Header.Values("WWW-Authenticate"), nonce: resp.Header.Get("DPoP-Nonce")}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("%s: body is not JSON: %v", url, err)
	}
	return a
}

// wantRefused checks a 401 with error code in the body and in a single DPoP
// challenge.
func (a dpopAnswer) wantRefused(t *testing.T, what, code string) {
	t.Helper()
	want := `error="` + code + `"`
	if a.status != http.StatusUnauthorized || a.body.Error != code || len(a.challenges) != 1 ||
		!strings.HasPrefix(a.challenges[0], `DPoP realm="api", algs="`) || !strings.Contains(a.challenges[0], want) {
		t.Errorf("%s: got %d %+v WWW-Authenticate %q, want 401 %s in a DPoP challenge", what, a.status, a.body, a.challenges, code)
	}
}

func (a dpopAnswer) wantAccepted(t *testing.T, what, sub string) {
	t.Helper()
	if a.status != http.StatusOK || a.body.Subject != sub {
		t.Errorf("%s: got %d %+v WWW-Authenticate %q, want 200 sub=%q", what, a.status, a.body, a.challenges, sub)
	}
}

// dpopAPI serves /profile and /checkout (scope checkout) behind v.
func dpopAPI(t *testing.T, v *rp.Verifier) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/profile", v.Middleware(claimsHandler(t)))
	mux.Handle("/checkout", v.Middleware(rp.RequireScope("checkout")(claimsHandler(t))))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestDPoPHolderAccepted: a token bound to a key (cnf.jkt) is accepted with
// a fresh proof from that key, for each proof algorithm.
func TestDPoPHolderAccepted(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss))
	profile := srv.URL + "/profile"
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.PS256, jose.EdDSA} {
		key := rptest.NewProofKey(t, alg)
		token := iss.BoundToken("alice", testAudience, "openid", key.Thumbprint())
		dpopCall(t, "GET", profile, "DPoP", token, key.Proof("GET", profile, token)).wantAccepted(t, string(alg), "alice")
		dpopCall(t, "GET", profile+"?q=1#f", "dpop", token, key.Proof("GET", profile, token)).
			wantAccepted(t, string(alg)+", query ignored, scheme in lower case", "alice")
	}
}

// TestDPoPAbuseRefused is every way a thief or a forger might use a bound
// token (rptest.Abuses), each refused with RFC 9449's error (and its
// WWW-Authenticate).
func TestDPoPAbuseRefused(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss))
	profile, checkout := srv.URL+"/profile", srv.URL+"/checkout"
	holder := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "openid", holder.Thumbprint())
	used := holder.Proof("GET", profile, token)
	dpopCall(t, "GET", profile, "DPoP", token, used).wantAccepted(t, "the holder", "alice")

	for _, abuse := range rptest.Abuses(t, holder, token, profile, checkout, used) {
		t.Run(abuse.Name, func(t *testing.T) {
			dpopCall(t, "GET", profile, abuse.Scheme, token, abuse.Proofs...).wantRefused(t, abuse.Name, abuse.Error)
		})
	}
	// A bad token is named as such whatever the proof.
	expired := iss.Sign(rptest.Claims{"aud": testAudience, "exp": time.Now().Add(-time.Hour).Unix(),
		"cnf": map[string]string{"jkt": holder.Thumbprint()}})
	dpopCall(t, "GET", profile, "DPoP", expired).wantRefused(t, "expired bound token, no proof", "invalid_token")
	// The holder is still accepted after all that.
	dpopCall(t, "GET", profile, "DPoP", token, holder.Proof("GET", profile, token)).wantAccepted(t, "the holder, again", "alice")
}

// TestDPoPBoundTokenAsBearer: Verify (the bearer check) refuses a bound
// token, and an unbound token presented with DPoP is refused too.
func TestDPoPBoundTokenAsBearer(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	key := rptest.NewProofKey(t, jose.ES256)
	bound := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	if _, err := v.Verify(t.Context(), bound); !errors.Is(err, rp.ErrTokenBound) || !errors.Is(err, rp.ErrInvalidToken) {
		t.Errorf("Verify(bound token) = %v, want ErrTokenBound", err)
	}
	url := "https://api.example.test/profile"
	c, err := v.VerifyDPoP(t.Context(), bound, key.Proof("GET", url, bound), "GET", url)
	if err != nil || c.JKT != key.Thumbprint() || c.Subject != "alice" {
		t.Errorf("VerifyDPoP(holder) = %+v, %v", c, err)
	}
	unbound := iss.Token("bob", testAudience, "")
	if _, err := v.VerifyDPoP(t.Context(), unbound, key.Proof("GET", url, unbound), "GET", url); !errors.Is(err, rp.ErrNotBound) {
		t.Errorf("VerifyDPoP(unbound token) = %v, want ErrNotBound", err)
	}
	other := rptest.NewProofKey(t, jose.ES256)
	if _, err := v.VerifyDPoP(t.Context(), bound, other.Proof("GET", url, bound), "GET", url); !errors.Is(err, rp.ErrKeyBinding) {
		t.Errorf("VerifyDPoP(another key) = %v, want ErrKeyBinding", err)
	}
	if _, err := v.VerifyDPoP(t.Context(), bound, key.Proof("PUT", url, bound), "GET", url); !errors.Is(err, rp.ErrInvalidProof) {
		t.Errorf("VerifyDPoP(another method) = %v, want ErrInvalidProof", err)
	}
}

// TestDPoPUnboundTokenWithDPoPScheme: through the middleware, a token
// bound to no key presented with the DPoP scheme and a good proof is
// refused with invalid_token and a DPoP challenge (RFC 9449 §7.1: the
// proof's key must be the one the token is bound to); as Bearer the same
// token is accepted.
func TestDPoPUnboundTokenWithDPoPScheme(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss))
	profile := srv.URL + "/profile"
	key := rptest.NewProofKey(t, jose.ES256)
	unbound := iss.Token("bob", testAudience, "")
	dpopCall(t, "GET", profile, "DPoP", unbound, key.Proof("GET", profile, unbound)).
		wantRefused(t, "unbound token with the DPoP scheme", "invalid_token")
	dpopCall(t, "GET", profile, "Bearer", unbound).wantAccepted(t, "the unbound token as Bearer", "bob")
}

// TestDPoPRequired: WithDPoPRequiredFor refuses the listed clients' unbound
// tokens (as Bearer too) and leaves other clients alone; WithDPoPRequired
// refuses every unbound token.
func TestDPoPRequired(t *testing.T) {
	iss := rptest.NewIssuer(t)
	spa := iss.Sign(rptest.Claims{"sub": "alice", "aud": testAudience, "client_id": "spa"})
	svc := iss.Sign(rptest.Claims{"sub": "svc", "aud": testAudience, "client_id": "batch"})

	srv := dpopAPI(t, newVerifier(t, iss, rp.WithDPoPRequiredFor("spa")))
	dpopCall(t, "GET", srv.URL+"/profile", "Bearer", spa).wantRefused(t, "spa's unbound token", "invalid_token")
	dpopCall(t, "GET", srv.URL+"/profile", "Bearer", svc).wantAccepted(t, "another client's bearer token", "svc")

	all := dpopAPI(t, newVerifier(t, iss, rp.WithDPoPRequired()))
	dpopCall(t, "GET", all.URL+"/profile", "Bearer", svc).wantRefused(t, "DPoP required for all", "invalid_token")
	key := rptest.NewProofKey(t, jose.ES256)
	bound := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	dpopCall(t, "GET", all.URL+"/profile", "DPoP", bound, key.Proof("GET", all.URL+"/profile", bound)).
		wantAccepted(t, "DPoP required, bound token", "alice")
}

// TestDPoPScopeChallenge: a DPoP request lacking a scope gets a DPoP
// insufficient_scope challenge.
func TestDPoPScopeChallenge(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss))
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "openid", key.Thumbprint())
	a := dpopCall(t, "GET", srv.URL+"/checkout", "DPoP", token, key.Proof("GET", srv.URL+"/checkout", token))
	if a.status != 403 || a.body.Error != "insufficient_scope" || len(a.challenges) != 1 ||
		!strings.HasPrefix(a.challenges[0], "DPoP ") || !strings.Contains(a.challenges[0], `scope="checkout"`) {
		t.Fatalf("got %d %+v %q, want 403 with a DPoP insufficient_scope challenge", a.status, a.body, a.challenges)
	}
}

// TestDPoPNoTokenOffersBothSchemes: 401 without credentials names Bearer
// first (as before DPoP) and DPoP with its algorithms.
func TestDPoPNoTokenOffersBothSchemes(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss, rp.WithProofAlgorithms(jose.ES256, jose.EdDSA)))
	a := dpopCall(t, "GET", srv.URL+"/profile", "", "")
	want := []string{`Bearer realm="api"`, `DPoP realm="api", algs="ES256 EdDSA"`}
	if a.status != 401 || strings.Join(a.challenges, "|") != strings.Join(want, "|") {
		t.Fatalf("got %d %q, want 401 %q", a.status, a.challenges, want)
	}
	if _, err := rp.NewVerifier(t.Context(), iss.URL, rp.WithAnyAudience(), rp.WithProofAlgorithms("HS256")); err == nil {
		t.Error("WithProofAlgorithms(HS256) accepted")
	}
}

// TestDPoPNonce: with WithDPoPNonce a proof without the server's nonce is
// refused with use_dpop_nonce and a DPoP-Nonce header; with it, accepted.
// Two replicas sharing the secret accept each other's nonces; a nonce of
// another secret, or a stale one, is refused.
func TestDPoPNonce(t *testing.T) {
	iss := rptest.NewIssuer(t)
	clk := newClock()
	secret := []byte(strings.Repeat("s", 32))
	a := dpopAPI(t, newVerifier(t, iss, rp.WithDPoPNonce(secret, time.Minute), rp.WithClock(clk.Now)))
	b := dpopAPI(t, newVerifier(t, iss, rp.WithDPoPNonce(secret, time.Minute), rp.WithClock(clk.Now)))
	other := dpopAPI(t, newVerifier(t, iss, rp.WithDPoPNonce([]byte(strings.Repeat("o", 32)), time.Minute), rp.WithClock(clk.Now)))
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	proof := func(url, nonce string) string {
		return key.ProofWith(rptest.Claims{"htm": "GET", "htu": url, "ath": rptest.ATH(token), "nonce": nonce,
			"iat": clk.Now().Unix()}, nil)
	}

	first := dpopCall(t, "GET", a.URL+"/profile", "DPoP", token, key.Proof("GET", a.URL+"/profile", token))
	first.wantRefused(t, "no nonce", "use_dpop_nonce")
	if first.nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	ok := dpopCall(t, "GET", a.URL+"/profile", "DPoP", token, proof(a.URL+"/profile", first.nonce))
	ok.wantAccepted(t, "with the nonce", "alice")
	if ok.nonce == "" {
		t.Error("a DPoP answer without the current DPoP-Nonce")
	}
	dpopCall(t, "GET", b.URL+"/profile", "DPoP", token, proof(b.URL+"/profile", first.nonce)).
		wantAccepted(t, "replica sharing the secret", "alice")
	dpopCall(t, "GET", other.URL+"/profile", "DPoP", token, proof(other.URL+"/profile", first.nonce)).
		wantRefused(t, "nonce of another secret", "use_dpop_nonce")
	clk.Advance(3 * time.Minute)
	dpopCall(t, "GET", a.URL+"/profile", "DPoP", token, proof(a.URL+"/profile", first.nonce)).
		wantRefused(t, "stale nonce", "use_dpop_nonce")
	if _, err := rp.NewVerifier(t.Context(), iss.URL, rp.WithAnyAudience(), rp.WithDPoPNonce([]byte("short"), 0)); err == nil {
		t.Error("a 5-byte nonce secret accepted")
	}
}

// TestDPoPReplayAcrossReplicas: two API replicas with their own in-memory
// caches cannot see each other's proofs — a proof used at one is accepted
// at the other; given one shared ReplayCache, it is refused.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	iss := rptest.NewIssuer(t)
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	const url = "https://api.example.test/profile" // both replicas answer to it
	replicas := func(opts ...rp.Option) (*httptest.Server, *httptest.Server) {
		opts = append(opts, rp.WithPublicURL("https://api.example.test"))
		return dpopAPI(t, newVerifier(t, iss, opts...)), dpopAPI(t, newVerifier(t, iss, opts...))
	}

	a, b := replicas()
	proof := key.Proof("GET", url, token)
	dpopCall(t, "GET", a.URL+"/profile", "DPoP", token, proof).wantAccepted(t, "replica A", "alice")
	dpopCall(t, "GET", b.URL+"/profile", "DPoP", token, proof).wantAccepted(t, "separate caches: replica B cannot know", "alice")

	shared := rp.NewMemoryReplayCache(0) // stands for Redis or SQL
	a, b = replicas(rp.WithReplayCache(shared))
	proof = key.Proof("GET", url, token)
	dpopCall(t, "GET", a.URL+"/profile", "DPoP", token, proof).wantAccepted(t, "replica A", "alice")
	dpopCall(t, "GET", b.URL+"/profile", "DPoP", token, proof).wantRefused(t, "shared cache: replayed at replica B", "invalid_dpop_proof")
}

// TestDPoPPublicURL: with WithPublicURL the proof must name that URL; a
// proof naming the URL the request was sent to is refused.
func TestDPoPPublicURL(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss, rp.WithPublicURL("https://api.example.test/")))
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	dpopCall(t, "GET", srv.URL+"/profile", "DPoP", token, key.Proof("GET", "https://API.example.test:443/profile", token)).
		wantAccepted(t, "public URL (case and default port aside)", "alice")
	dpopCall(t, "GET", srv.URL+"/profile", "DPoP", token, key.Proof("GET", srv.URL+"/profile", token)).
		wantRefused(t, "the listener's URL", "invalid_dpop_proof")
	if _, err := rp.NewVerifier(t.Context(), iss.URL, rp.WithAnyAudience(), rp.WithPublicURL("api.example.test")); err == nil {
		t.Error("a public URL without scheme accepted")
	}
}

// failingCache is a replay cache whose store is down, or full.
type failingCache struct{}

func (failingCache) Claim(context.Context, string, time.Time) error { return errors.New("store down") }

// TestDPoPReplayCacheUnavailable: a replay cache that fails refuses the
// request with 503 — never lets an unchecked proof through — and the
// in-memory cache, full of live proofs, does the same rather than forget
// one.
func TestDPoPReplayCacheUnavailable(t *testing.T) {
	iss := rptest.NewIssuer(t)
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())

	down := dpopAPI(t, newVerifier(t, iss, rp.WithReplayCache(failingCache{})))
	a := dpopCall(t, "GET", down.URL+"/profile", "DPoP", token, key.Proof("GET", down.URL+"/profile", token))
	if a.status != http.StatusServiceUnavailable || a.body.Error != "temporarily_unavailable" {
		t.Errorf("replay cache down: got %d %+v, want 503", a.status, a.body)
	}

	small := dpopAPI(t, newVerifier(t, iss, rp.WithReplayCache(rp.NewMemoryReplayCache(2))))
	url := small.URL + "/profile"
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dpopCall(t, "GET", url, "DPoP", token, key.Proof("GET", url, token)).wantAccepted(t, "cache not full", "alice")
		}()
	}
	wg.Wait()
	a = dpopCall(t, "GET", url, "DPoP", token, key.Proof("GET", url, token))
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("cache full: got %d %+v, want 503", a.status, a.body)
	}
}

// TestDPoPConcurrentReplay: the same proof sent many times at once is
// accepted exactly once.
func TestDPoPConcurrentReplay(t *testing.T) {
	iss := rptest.NewIssuer(t)
	srv := dpopAPI(t, newVerifier(t, iss))
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	url := srv.URL + "/profile"
	proof := key.Proof("GET", url, token)
	if accepted := racingAccepts(t, []string{url}, 16, token, proof); accepted != 1 {
		t.Fatalf("one proof sent 16 times at once was accepted %d times, want 1", accepted)
	}
}

// racingAccepts sends proof with token n times at once, to the URLs in
// turn, and counts the 200s.
func racingAccepts(t *testing.T, urls []string, n int, token, proof string) int {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	accepted := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dpopCall(t, "GET", urls[i%len(urls)], "DPoP", token, proof).status == http.StatusOK {
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return accepted
}

// TestDPoPHostHeaderThatIsNoURL: without WithPublicURL the URL comes from
// the Host header; one that makes no URL refuses the proof (401), it is not
// the server's failure (503).
func TestDPoPHostHeaderThatIsNoURL(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v := newVerifier(t, iss)
	key := rptest.NewProofKey(t, jose.ES256)
	token := iss.BoundToken("alice", testAudience, "", key.Thumbprint())
	req := httptest.NewRequest("GET", "/profile", nil)
	req.Host = "%zz"
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", key.Proof("GET", "http://%zz/profile", token))
	rec := httptest.NewRecorder()
	v.Middleware(claimsHandler(t)).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`) {
		t.Fatalf("Host %%zz: %d %q, want 401 invalid_dpop_proof", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
