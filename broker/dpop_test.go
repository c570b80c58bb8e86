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
	var header []string
	for _, p := range proofs {
		header = append(header, "DPoP", p)
	}
	return e.token(form, user, pass, header...)
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
	if auth != "" {
		req.Header.Set("Authorization", auth)
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
// key; a replayed proof is invalid_dpop_proof and spends nothing. The access token carries cnf.jkt and works at /userinfo only with a
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
		exchangeProof := e.proof(key, "POST", pathToken, dpop.ProofOptions{})
		tr := e.dpopExchange(code, ar, exchangeProof)
		wantDPoPToken(t, e, tr, key.JKT())
		// The exchange's proof replayed on a refresh: refused, and the
		// refresh token is not rotated (tr2 below redeems it).
		wantTokenError(t, e.dpopRefresh(tr.RefreshToken, exchangeProof), http.StatusBadRequest, "invalid_dpop_proof")

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
// token endpoint is invalid_dpop_proof (400), and issues nothing; a proof
// of the same request replayed too.
func TestDPoPTokenEndpointRefusesBadProofs(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, nil)
	key, signer := newDPoPKey(t)
	_, other := newDPoPKey(t)
	pub := &jose.JSONWebKey{Key: key.Public()}
	now := time.Now()
	tokenURL := e.issuer + pathToken
	claims := func(htm, htu string, iat time.Time) map[string]any {
		return map[string]any{"jti": newVerifier(), "htm": htm, "htu": htu, "iat": iat.Unix()}
	}
	sign := func(c map[string]any) string {
		return signProof(t, key, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": pub}, c)
	}
	replayed := e.proof(signer, "POST", pathToken, dpop.ProofOptions{})
	mustOK(t, e.dpopToken(url.Values{"grant_type": {"client_credentials"}}, apiID, apiSecret, replayed))
	parts := strings.Split(e.proof(other, "POST", pathToken, dpop.ProofOptions{}), ".")
	cases := map[string][]string{
		"other URL":             {sign(claims("POST", e.issuer+pathUserinfo, now))},
		"other method":          {sign(claims("GET", tokenURL, now))},
		"old iat":               {sign(claims("POST", tokenURL, now.Add(-10*time.Minute)))},
		"future iat":            {sign(claims("POST", tokenURL, now.Add(10*time.Minute)))},
		"replayed proof":        {replayed},
		"other key's signature": {parts[0] + "." + b64JSON(claims("POST", tokenURL, now)) + "." + parts[2]},
		"two proofs":            {e.proof(signer, "POST", pathToken, dpop.ProofOptions{}), e.proof(signer, "POST", pathToken, dpop.ProofOptions{})},
		"malformed":             {"not.a.jws"},
		"empty":                 {""},
	}
	for name, p := range forgedProofs(t, key, claims("POST", tokenURL, now)) {
		cases[name] = []string{p}
	}
	for name, proofs := range cases {
		for _, grant := range []url.Values{
			{"grant_type": {"client_credentials"}},
			{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spaID}},
		} {
			user, pass := apiID, apiSecret
			if grant.Get("client_id") != "" {
				if name == "replayed proof" {
					// The jti is claimed with the grant's writes: a
					// refused grant answers its own error.
					// TestDPoPPublicClientFlow replays on a good one.
					continue
				}
				user, pass = "", ""
			}
			tr := e.dpopToken(grant, user, pass, proofs...)
			if tr.status != http.StatusBadRequest || tr.Error != "invalid_dpop_proof" || tr.AccessToken != "" {
				t.Errorf("%s (%s): %d %q %s", name, grant.Get("grant_type"), tr.status, tr.Error, tr.Description)
			}
		}
	}
}

// forgedProofs are proofs of claims that no verifier may accept whatever
// the request: alg none, HS256 (with an oct jwk), a private jwk, typ JWT.
func forgedProofs(t testing.TB, key *ecdsa.PrivateKey, claims map[string]any) map[string]string {
	pub := &jose.JSONWebKey{Key: key.Public()}
	header := func(typ, alg string, jwk any) map[string]any {
		return map[string]any{"typ": typ, "alg": alg, "jwk": jwk}
	}
	hsInput := b64JSON(header("dpop+jwt", "HS256", map[string]string{"kty": "oct", "k": "c2VjcmV0"})) + "." + b64JSON(claims)
	return map[string]string{
		"alg none":    b64JSON(header("dpop+jwt", "none", pub)) + "." + b64JSON(claims) + ".",
		"HS256":       hsInput + "." + base64.RawURLEncoding.EncodeToString(hmacSHA256([]byte("secret"), []byte(hsInput))),
		"private jwk": signProof(t, key, header("dpop+jwt", "ES256", &jose.JSONWebKey{Key: key}), claims),
		"typ JWT":     signProof(t, key, header("JWT", "ES256", pub), claims),
	}
}

// signProof signs header and claims as given with key (ES256).
func signProof(t testing.TB, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	p, err := dpop.SignRaw(key, jose.ES256, header, claims)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func b64JSON(v any) string {
	j, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(j)
}

// TestDPoPUserinfoRefusesBadProofs: /userinfo refuses a bound token with a
// proof for another URL or method, a replayed proof, an old iat, another
// key, a wrong ath, alg none, HS256, a private jwk, typ JWT, two proofs, or
// none, each with 401 and a DPoP challenge.
func TestDPoPUserinfoRefusesBadProofs(t *testing.T) {
	b := storagetest.Backends(t)[0]
	e := newTestEnv(t, b, nil)
	keyPriv, key := newDPoPKey(t)
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
		"two proofs":   {e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at}), e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at})},
	}
	forged := map[string]any{"jti": newVerifier(), "htm": "GET", "htu": e.issuer + pathUserinfo, "iat": time.Now().Unix(), "ath": dpop.AccessTokenHash(at)}
	for name, p := range forgedProofs(t, keyPriv, forged) {
		cases[name] = []string{p}
	}
	// No token: both schemes are offered; a garbage token with the DPoP
	// scheme gets a DPoP challenge.
	resp, _ := e.userinfo("GET", "")
	if www := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || len(www) != 2 || !strings.HasPrefix(www[1], `DPoP algs="ES256`) {
		t.Errorf("no token: %d %q", resp.StatusCode, www)
	}
	resp, _ = e.userinfo("GET", "DPoP garbage", good)
	if www := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(www, "DPoP ") || !strings.Contains(www, `error="invalid_token"`) {
		t.Errorf("garbage token with DPoP: %d %q", resp.StatusCode, www)
	}
	for name, proofs := range cases {
		resp, body := e.userinfo("GET", "DPoP "+at, proofs...)
		www := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(www, "DPoP ") || !strings.Contains(www, `error="invalid_dpop_proof"`) {
			t.Errorf("%s: %d %q %s", name, resp.StatusCode, www, body)
		}
	}
}

// TestDPoPUserinfoRefusesUnboundToken: RFC 9449 §7.1 and §4.3 (check
// 12): under the DPoP scheme the proof's key must match the key the
// access token is bound to, so a token bound to none (a bearer token) is
// refused there with invalid_token and a DPoP challenge, however good the
// proof, and without spending it; the token keeps working as Bearer. It
// was accepted: whoever held a bearer token could present it as DPoP with
// a key of their own.
func TestDPoPUserinfoRefusesUnboundToken(t *testing.T) {
	e := newTestEnv(t, storagetest.Backends(t)[0], nil)
	_, key := newDPoPKey(t)
	ar := spaAuth()
	at := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar)).AccessToken
	proof := e.proof(key, "GET", pathUserinfo, dpop.ProofOptions{AccessToken: at})
	resp, body := e.userinfo("GET", "DPoP "+at, proof)
	www := resp.Header.Values("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || len(www) != 1 || !strings.HasPrefix(www[0], `DPoP algs="`) ||
		!strings.Contains(www[0], `error="invalid_token"`) || !strings.Contains(body, `"error":"invalid_token"`) {
		t.Errorf("an unbound token with the DPoP scheme and a good proof: %d %q %s", resp.StatusCode, www, body)
	}
	if resp, body := e.userinfo("GET", "Bearer "+at); resp.StatusCode != http.StatusOK {
		t.Errorf("the unbound token as Bearer: %d %s", resp.StatusCode, body)
	}
	if n := storagetest.CountRows(t, e.store, "dpop_proofs"); n != 0 {
		t.Errorf("the refused request spent its proof: %d proofs recorded", n)
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
	// Introspection by its client says which refresh token is bound.
	for name, c := range map[string]struct {
		token string
		jkt   any
	}{"bound": {bound.RefreshToken, key.JKT()}, "unbound": {unbound.RefreshToken, nil}} {
		resp, body := e.post(pathIntrospect, url.Values{"token": {c.token}}, webID, webSecret)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		cnf, _ := m["cnf"].(map[string]any)
		if resp.StatusCode != http.StatusOK || m["active"] != true || cnf["jkt"] != c.jkt {
			t.Fatalf("introspection of the %s refresh token: %d %s", name, resp.StatusCode, body)
		}
	}
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

// TestDPoPConcurrentReplay: one proof sent by eight requests at once gets
// one token; the others are invalid_dpop_proof (the jti's claim commits
// with the grant, so the race is the database's).
func TestDPoPConcurrentReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		_, key := newDPoPKey(t)
		proof := e.proof(key, "POST", pathToken, dpop.ProofOptions{})
		results := make(chan tokenResponse, 8)
		start := make(chan struct{})
		for range 8 {
			go func() {
				<-start
				results <- e.dpopToken(url.Values{"grant_type": {"client_credentials"}}, apiID, apiSecret, proof)
			}()
		}
		close(start)
		won := 0
		for range 8 {
			tr := <-results
			switch {
			case tr.status == http.StatusOK:
				won++
			case tr.status != http.StatusBadRequest || tr.Error != "invalid_dpop_proof":
				t.Errorf("a loser got %d %q %s", tr.status, tr.Error, tr.Description)
			}
		}
		if won != 1 {
			t.Fatalf("%d requests with one proof got a token, want 1", won)
		}
	})
}

// FuzzDPoPHeader: whatever the DPoP header holds, a client_credentials
// request (whose client may get a token without one) is answered 200 with
// a token bound to the proof's key, or 400 with RFC 9449's
// invalid_dpop_proof: never a 5xx, never a bearer token.
func FuzzDPoPHeader(f *testing.F) {
	e := newTestEnv(f, storagetest.Backend{Name: "sqlite"}, nil)
	_, key := newDPoPKey(f)
	for _, seed := range []string{
		e.proof(key, "POST", pathToken, dpop.ProofOptions{}),
		e.proof(key, "GET", pathToken, dpop.ProofOptions{}),
		"", "a.b.c", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.", strings.Repeat("A", 9000),
	} {
		f.Add(seed)
	}
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, proof string) {
		req := tokenRequest(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, apiID, apiSecret)
		req.Header["Dpop"] = []string{proof}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var answer struct {
			TokenType string `json:"token_type"`
			Error     string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%q: %d answer is not JSON: %s", proof, rec.Code, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK && answer.TokenType == "DPoP":
		case rec.Code == http.StatusBadRequest && answer.Error == "invalid_dpop_proof":
		default:
			t.Fatalf("%q: %d %s", proof, rec.Code, rec.Body)
		}
	})
}
