package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// newDPoPKey is a fresh P-256 key and its proof signer.
func newDPoPKey(t testing.TB) (*ecdsa.PrivateKey, *dpop.Signer) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

// proof is a fresh proof of s for method and the broker's path.
func (e *testEnv) proof(s *dpop.Signer, method, path string, o dpop.ProofOptions) string {
	e.t.Helper()
	p, err := s.Proof(method, e.issuer+path, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// dpopToken posts a token request with the given DPoP header values.
func (e *testEnv) dpopToken(form url.Values, user, pass string, proofs ...string) tokenResponse {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+pathToken, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		e.t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
	}
	tr.status, tr.header = resp.StatusCode, resp.Header
	return tr
}

func (e *testEnv) dpopExchange(code string, ar authRequest, proof string) tokenResponse {
	return e.dpopToken(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {ar.params.Get("redirect_uri")},
		"client_id":     {ar.params.Get("client_id")},
		"code_verifier": {ar.verifier},
	}, "", "", proof)
}

func (e *testEnv) dpopRefresh(rt, proof string) tokenResponse {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}}
	if proof == "" {
		return e.dpopToken(form, "", "")
	}
	return e.dpopToken(form, "", "", proof)
}

// userinfo calls /userinfo with an Authorization header and DPoP proofs.
func (e *testEnv) userinfo(method, auth string, proofs ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.issuer+pathUserinfo, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func wantDPoPToken(t testing.TB, e *testEnv, tr tokenResponse, jkt string) {
	t.Helper()
	mustOK(t, tr)
	if tr.TokenType != "DPoP" {
		t.Fatalf("token_type %q, want DPoP", tr.TokenType)
	}
	_, claims := e.verifyJWT(tr.AccessToken)
	cnf, _ := claims["cnf"].(map[string]any)
	if cnf["jkt"] != jkt {
		t.Fatalf("access token cnf %v, want jkt %s", claims["cnf"], jkt)
	}
}

// TestDPoPPublicClientFlow: a public client's tokens are bound to its DPoP
// key. The access token carries cnf.jkt and works at /userinfo only with a
// proof from the key; the refresh token, copied out (the attack of issue
// 16), is invalid_grant without a proof from the key, or with one from
// another key, and still works for the key's holder afterwards;
// introspection reports cnf; revocation ends the bound grant.
func TestDPoPPublicClientFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		_, key := newDPoPKey(t)
		_, thief := newDPoPKey(t)
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		tr := e.dpopExchange(code, ar, e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
		wantDPoPToken(t, e, tr, key.JKT())

		m := e.introspect(tr.AccessToken)
		if cnf, _ := m["cnf"].(map[string]any); m["active"] != true || cnf["jkt"] != key.JKT() || m["token_type"] != "DPoP" {
			t.Fatalf("introspection of a bound access token: %v", m)
		}

		// /userinfo: DPoP scheme with a proof from the key.
		resp, body := e.userinfo("GET", "DPoP "+tr.AccessToken, e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: tr.AccessToken}))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, e.user.ID) {
			t.Fatalf("userinfo with DPoP: %d %s", resp.StatusCode, body)
		}
		// The same token as Bearer (copied out of the browser) is refused.
		resp, body = e.userinfo("GET", "Bearer "+tr.AccessToken)
		if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
			!strings.HasPrefix(www, "DPoP ") || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, `algs="ES256`) {
			t.Fatalf("bound token as Bearer: %d %q %s", resp.StatusCode, www, body)
		}

		// The refresh token copied out: no proof, or another key's proof.
		wantTokenError(t, e.dpopRefresh(tr.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")
		wantTokenError(t, e.dpopRefresh(tr.RefreshToken, e.proof(thief, "POST", pathToken, dpop.ProofOptions{})), http.StatusBadRequest, "invalid_grant")
		// The holder of the key still refreshes with it: the attempts
		// above changed nothing.
		tr2 := e.dpopRefresh(tr.RefreshToken, e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
		wantDPoPToken(t, e, tr2, key.JKT())
		if m := e.introspect(tr2.RefreshToken); m["active"] != false {
			t.Fatalf("api sees the SPA's refresh token: %v", m)
		}
		// The rotated refresh token is bound too.
		wantTokenError(t, e.dpopRefresh(tr2.RefreshToken, ""), http.StatusBadRequest, "invalid_grant")

		// Revocation works for bound tokens (public client: client_id).
		resp2, rbody := e.post(pathRevoke, url.Values{"token": {tr2.RefreshToken}, "client_id": {spaID}}, "", "")
		if resp2.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %s", resp2.StatusCode, rbody)
		}
		wantTokenError(t, e.dpopRefresh(tr2.RefreshToken, e.proof(key, "POST", pathToken, dpop.ProofOptions{})), http.StatusBadRequest, "invalid_grant")
		if e.active(tr2.AccessToken) {
			t.Fatal("access token of a revoked grant still active")
		}
	})
}

// TestDPoPTokenEndpointRefusesBadProofs: every abuse of the proof at the
// token endpoint is invalid_dpop_proof (400), and issues nothing.
func TestDPoPTokenEndpointRefusesBadProofs(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, nil)
	key, signer := newDPoPKey(t)
	_, other := newDPoPKey(t)
	pub := &jose.JSONWebKey{Key: key.Public()}
	header := func(alg string, jwk any) map[string]any {
		return map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwk}
	}
	claims := func(htm, htu string, iat time.Time) map[string]any {
		return map[string]any{"jti": newVerifier(), "htm": htm, "htu": htu, "iat": iat.Unix()}
	}
	sign := func(h, c map[string]any) string {
		p, err := dpop.SignRaw(key, jose.ES256, h, c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := func(v any) string {
		j, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	now := time.Now()
	tokenURL := e.issuer + pathToken
	replayed := e.proof(signer, "POST", pathToken, dpop.ProofOptions{})
	mustOK(t, e.dpopToken(url.Values{"grant_type": {"client_credentials"}}, apiID, apiSecret, replayed))
	otherSigned := e.proof(other, "POST", pathToken, dpop.ProofOptions{})
	parts := strings.Split(otherSigned, ".")
	cases := map[string][]string{
		"alg none":              {b64(header("none", pub)) + "." + b64(claims("POST", tokenURL, now)) + "."},
		"HS256":                 {hs256Token(header("HS256", map[string]string{"kty": "oct", "k": "c2VjcmV0"}), claims("POST", tokenURL, now))},
		"private jwk":           {sign(header("ES256", &jose.JSONWebKey{Key: key}), claims("POST", tokenURL, now))},
		"typ JWT":               {sign(map[string]any{"typ": "JWT", "alg": "ES256", "jwk": pub}, claims("POST", tokenURL, now))},
		"other URL":             {sign(header("ES256", pub), claims("POST", e.issuer+pathUserinfo, now))},
		"other method":          {sign(header("ES256", pub), claims("GET", tokenURL, now))},
		"old iat":               {sign(header("ES256", pub), claims("POST", tokenURL, now.Add(-10*time.Minute)))},
		"future iat":            {sign(header("ES256", pub), claims("POST", tokenURL, now.Add(10*time.Minute)))},
		"replayed proof":        {replayed},
		"other key's signature": {parts[0] + "." + b64(claims("POST", tokenURL, now)) + "." + parts[2]},
		"two proofs":            {e.proof(signer, "POST", pathToken, dpop.ProofOptions{}), e.proof(signer, "POST", pathToken, dpop.ProofOptions{})},
		"malformed":             {"not.a.jws"},
		"empty":                 {""},
	}
	for name, proofs := range cases {
		for _, grant := range []url.Values{
			{"grant_type": {"client_credentials"}},
			{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spaID}},
		} {
			user, pass := apiID, apiSecret
			if grant.Get("client_id") != "" {
				user, pass = "", ""
			}
			tr := e.dpopToken(grant, user, pass, proofs...)
			if tr.status != http.StatusBadRequest || tr.Error != "invalid_dpop_proof" || tr.AccessToken != "" {
				t.Errorf("%s (%s): %d %q %s", name, grant.Get("grant_type"), tr.status, tr.Error, tr.Description)
			}
		}
	}
}

// hs256Token is a JWS signed with HMAC-SHA256 (a symmetric alg a DPoP
// proof must not use).
func hs256Token(header, claims map[string]any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(hmacSHA256([]byte("secret"), []byte(input)))
}

// TestDPoPUserinfoRefusesBadProofs: /userinfo refuses a bound token with a
// proof for another URL or method, a replayed proof, an old iat, another
// key, a wrong ath, or none, each with 401 and a DPoP challenge.
func TestDPoPUserinfoRefusesBadProofs(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, nil)
	_, key := newDPoPKey(t)
	_, other := newDPoPKey(t)
	ar := spaAuth()
	tr := e.dpopExchange(e.browser().loginForCode(ar), ar, e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
	wantDPoPToken(t, e, tr, key.JKT())
	at := tr.AccessToken
	good := e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at})
	if resp, body := e.userinfo("GET", "DPoP "+at, good); resp.StatusCode != http.StatusOK {
		t.Fatalf("good proof: %d %s", resp.StatusCode, body)
	}
	cases := map[string][]string{
		"replayed":     {good},
		"other URL":    {e.proof(key, "GET", pathToken, dpop.ProofOptions{AccessToken: at})},
		"other method": {e.proof(key, "POST", pathUserinfo, dpop.ProofOptions{AccessToken: at})},
		"old iat":      {e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at, IssuedAt: time.Now().Add(-10 * time.Minute)})},
		"other key":    {e.proof(other, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at})},
		"wrong ath":    {e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at + "x"})},
		"no ath":       {e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{})},
		"no proof":     nil,
	}
	for name, proofs := range cases {
		resp, body := e.userinfo("GET", "DPoP "+at, proofs...)
		www := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(www, "DPoP ") || !strings.Contains(www, `error="invalid_dpop_proof"`) {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, www, body)
		}
	}
}

// TestDPoPNonce: with server nonces on, a proof without a nonce (or with a
// forged one) is use_dpop_nonce with a DPoP-Nonce to retry with, at the
// token endpoint (400) and at /userinfo (401 with a DPoP challenge); the
// retry with the nonce works. A second broker with the same system secret
// (a replica) accepts the first one's nonce.
func TestDPoPNonce(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, func(c *Config) { c.DPoPNonce = true })
	_, key := newDPoPKey(t)
	form := url.Values{"grant_type": {"client_credentials"}}
	for name, nonce := range map[string]string{"none": "", "forged": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		tr := e.dpopToken(form, apiID, apiSecret, e.proof(key, "POST", pathToken, dpop.ProofOptions{Nonce: nonce}))
		wantTokenError(t, tr, http.StatusBadRequest, "use_dpop_nonce")
		if tr.header.Get("DPoP-Nonce") == "" {
			t.Fatalf("%s: use_dpop_nonce without a DPoP-Nonce", name)
		}
	}
	tr := e.dpopToken(form, apiID, apiSecret, e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
	nonce := tr.header.Get("DPoP-Nonce")
	tr = e.dpopToken(form, apiID, apiSecret, e.proof(key, "POST", pathToken, dpop.ProofOptions{Nonce: nonce}))
	wantDPoPToken(t, e, tr, key.JKT())

	// The resource side: the SPA's bound token at /userinfo.
	ar := spaAuth()
	code := e.browser().loginForCode(ar)
	spa := e.dpopExchange(code, ar, e.proof(key, "POST", pathToken, dpop.ProofOptions{Nonce: nonce}))
	wantDPoPToken(t, e, spa, key.JKT())
	resp, body := e.userinfo("GET", "DPoP "+spa.AccessToken, e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: spa.AccessToken}))
	if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(www, `error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("userinfo without nonce: %d %q %s", resp.StatusCode, www, body)
	}
	resp, body = e.userinfo("GET", "DPoP "+spa.AccessToken, e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: spa.AccessToken, Nonce: resp.Header.Get("DPoP-Nonce")}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo with nonce: %d %s", resp.StatusCode, body)
	}

	// A replica: another broker, same database and system secret.
	replica := newDPoPReplica(t, e, func(c *Config) { c.DPoPNonce = true })
	rtr := replica.dpopToken(form, apiID, apiSecret, replica.proof(key, "POST", pathToken, dpop.ProofOptions{Nonce: nonce}))
	wantDPoPToken(t, replica, rtr, key.JKT())
}

// newDPoPReplica starts a second broker over e's store and keys (a
// replica behind the same load balancer would have its own issuer URL
// only in tests).
func newDPoPReplica(t *testing.T, e *testEnv, mod func(*Config)) *testEnv {
	t.Helper()
	cfg := e.srv.cfg
	cfg.Issuer = ""
	if mod != nil {
		mod(&cfg)
	}
	r := *e
	r.ts = nil
	srv, ts := startBroker(t, cfg)
	r.srv, r.ts, r.issuer = srv, ts, srv.cfg.Issuer
	return &r
}

// TestDPoPJKTBindsTheCode: dpop_jkt on the authorization request binds the
// code (RFC 9449 section 10): redeeming it without a proof, or with
// another key's, is invalid_grant; with the key it works, and the grant's
// refresh token is bound too, even for a confidential client. A malformed
// dpop_jkt is invalid_request.
func TestDPoPJKTBindsTheCode(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, nil)
	_, key := newDPoPKey(t)
	_, other := newDPoPKey(t)

	for name, proof := range map[string]string{"no proof": "", "other key": e.proof(other, "POST", pathToken, dpop.ProofOptions{})} {
		ar := spaAuth("dpop_jkt", key.JKT())
		code := e.browser().loginForCode(ar)
		var tr tokenResponse
		if proof == "" {
			tr = e.exchange(code, ar)
		} else {
			tr = e.dpopExchange(code, ar, proof)
		}
		if tr.status != http.StatusBadRequest || tr.Error != "invalid_grant" {
			t.Fatalf("%s: %d %q %s", name, tr.status, tr.Error, tr.Description)
		}
	}
	ar := spaAuth("dpop_jkt", key.JKT())
	wantDPoPToken(t, e, e.dpopExchange(e.browser().loginForCode(ar), ar, e.proof(key, "POST", pathToken, dpop.ProofOptions{})), key.JKT())

	// A confidential client that asked (dpop_jkt) gets a bound refresh
	// token; one that did not gets bound access tokens only.
	webForm := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {webRedirect}}
	}
	webAuth := func(extra ...string) authRequest {
		return spaAuth(append([]string{"client_id", webID, "redirect_uri", webRedirect, "code_challenge", "", "code_challenge_method", ""}, extra...)...)
	}
	bound := e.dpopToken(webForm(e.browser().loginForCode(webAuth("dpop_jkt", key.JKT()))), webID, webSecret, e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
	wantDPoPToken(t, e, bound, key.JKT())
	wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.RefreshToken}}, webID, webSecret), http.StatusBadRequest, "invalid_grant")
	unbound := e.dpopToken(webForm(e.browser().loginForCode(webAuth())), webID, webSecret, e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
	wantDPoPToken(t, e, unbound, key.JKT())
	if tr := mustOK(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {unbound.RefreshToken}}, webID, webSecret)); tr.TokenType != "bearer" {
		t.Fatalf("confidential refresh without proof: token_type %q", tr.TokenType)
	}

	p := e.browser().get(e.authURL(spaAuth("dpop_jkt", "not-a-thumbprint")))
	if q := redirectParams(t, p, spaRedirect); q.Get("error") != "invalid_request" {
		t.Fatalf("malformed dpop_jkt: %v", q)
	}
}

// TestRequireDPoP: a client registered with require_dpop gets no token
// without a proof (invalid_dpop_proof), and a bound one with it.
func TestRequireDPoP(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, nil)
	form := url.Values{"grant_type": {"client_credentials"}}
	if tr := mustOK(t, e.token(form, apiID, apiSecret)); tr.TokenType != "bearer" {
		t.Fatalf("before require_dpop: token_type %q", tr.TokenType)
	}
	requireDPoP(t, e.store, apiID)
	time.Sleep(clientCacheTTL + 100*time.Millisecond)
	wantTokenError(t, e.token(form, apiID, apiSecret), http.StatusBadRequest, "invalid_dpop_proof")
	_, key := newDPoPKey(t)
	wantDPoPToken(t, e, e.dpopToken(form, apiID, apiSecret, e.proof(key, "POST", pathToken, dpop.ProofOptions{})), key.JKT())
}

// TestDPoPDiscoveryAndCORS: discovery advertises the proof algorithms; a
// browser on a registered origin may send the DPoP header (preflight) and
// read DPoP-Nonce.
func TestDPoPDiscoveryAndCORS(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, func(c *Config) { c.DPoPNonce = true })
	resp, err := http.Get(e.issuer + pathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	algs, _ := doc["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 || algs[0] != "ES256" {
		t.Fatalf("dpop_signing_alg_values_supported: %v", doc["dpop_signing_alg_values_supported"])
	}
	for _, path := range []string{pathToken, pathUserinfo} {
		req, _ := http.NewRequest(http.MethodOptions, e.issuer+path, nil)
		req.Header.Set("Origin", spaOrigin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "dpop, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "DPoP") {
			t.Fatalf("%s preflight: Allow-Headers %q", path, resp.Header.Get("Access-Control-Allow-Headers"))
		}
	}
	_, key := newDPoPKey(t)
	req, _ := http.NewRequest(http.MethodPost, e.issuer+pathToken, strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spaID}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", spaOrigin)
	req.Header.Set("DPoP", e.proof(key, "POST", pathToken, dpop.ProofOptions{}))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("DPoP-Nonce") == "" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "DPoP-Nonce") || resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Fatalf("token answer to a browser: %d %v", resp.StatusCode, resp.Header)
	}
}

// startBroker serves a broker of cfg on a new loopback listener (its
// issuer).
func startBroker(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + ts.Listener.Addr().String()
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return srv, ts
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// requireDPoP marks a fixture client as requiring DPoP.
func requireDPoP(t testing.TB, store *storage.Store, id string) {
	t.Helper()
	ctx := context.Background()
	c, err := store.LookupClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c.RequireDPoP = true
	if err := store.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
}
