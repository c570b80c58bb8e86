package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/wasm/internal/oidctest"
)

// memProofKey is a host ProofKey on crypto/ecdsa, standing in for the
// worker's non-extractable WebCrypto key.
type memProofKey struct {
	mu      sync.Mutex
	key     *ecdsa.PrivateKey
	rotated int
	forgot  int
}

func (k *memProofKey) get() *ecdsa.PrivateKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key == nil {
		k.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return k.key
}

func (k *memProofKey) PublicJWK(context.Context) (map[string]any, error) {
	pub := k.get().PublicKey
	raw, _ := pub.Bytes() // 0x04 || X || Y
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]any{"kty": "EC", "crv": "P-256", "x": enc(raw[1:33]), "y": enc(raw[33:]), "ext": true}, nil
}

func (k *memProofKey) Sign(_ context.Context, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	r, s, err := ecdsa.Sign(rand.Reader, k.get(), sum[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}

func (k *memProofKey) Rotate(context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k.rotated++
	return nil
}

func (k *memProofKey) Forget() {
	k.mu.Lock()
	k.forgot++
	k.mu.Unlock()
}

func newDPoPEnv(t *testing.T) (*env, *memProofKey, *Client) {
	t.Helper()
	e := newEnvWith(t, oidctest.Config{Alg: "ES256", DPoP: true})
	key := &memProofKey{}
	deps := e.deps()
	deps.ProofKey = key
	return e, key, e.client(deps)
}

// redeem posts a refresh_token grant as someone else would: with the given
// headers (none: the stolen token alone).
func redeem(t *testing.T, e *env, rt string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/oauth2/token", strings.NewReader(params{{"grant_type", "refresh_token"}, {"refresh_token", rt}, {"client_id", testClient}}.encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestDPoPBindsTheSessionToTheKey(t *testing.T) {
	e, key, c := newDPoPEnv(t)
	ctx := context.Background()
	u, err := c.AuthorizeURL(ctx, AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := key.PublicJWK(ctx)
	delete(jwk, "ext")
	jkt := thumbprint(jwk)
	if q := parseQuery(strings.SplitN(u, "?", 2)[1]); q["dpop_jkt"] != jkt {
		t.Errorf("dpop_jkt = %q, want the key's thumbprint %q", q["dpop_jkt"], jkt)
	}
	if _, err := c.HandleCallback(ctx, e.authorize(u)); err != nil {
		t.Fatal(err)
	}
	s := c.Session()
	if s.TokenType != "DPoP" || s.JKT != jkt || c.View().TokenType != "DPoP" {
		t.Fatalf("session token type %q jkt %q, want DPoP %q", s.TokenType, s.JKT, jkt)
	}
	// Abuse: the refresh token alone, copied out, is refused; so is a proof
	// from another key.
	if st, body := redeem(t, e, s.RefreshToken, nil); st != 400 || !strings.Contains(body, "invalid_grant") {
		t.Errorf("stolen refresh token without a proof: %d %s", st, body)
	}
	other := &memProofKey{}
	oc := e.client(Deps{Transport: httpTransport{http.DefaultClient}, Verifier: stdVerifier{}, Clock: e.clock, Random: rand.Reader, ProofKey: other})
	proof, err := oc.Proof(ctx, "POST", e.url+"/oauth2/token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if st, body := redeem(t, e, s.RefreshToken, map[string]string{"DPoP": proof}); st != 400 || !strings.Contains(body, "invalid_grant") {
		t.Errorf("stolen refresh token with another key's proof: %d %s", st, body)
	}
	// The holder of the key refreshes, and the API (userinfo) takes the
	// access token with a proof.
	if err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh with the key: %v", err)
	}
	if c.Session().TokenType != "DPoP" {
		t.Error("refreshed token is not DPoP-bound")
	}
	info, err := c.UserInfo(ctx)
	if err != nil || str(info, "email") != testUser {
		t.Fatalf("userinfo with DPoP: %v %v", info, err)
	}
	// Abuse: the access token presented as a Bearer token is refused.
	req, _ := http.NewRequest("GET", e.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+c.Session().AccessToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("bound access token as Bearer: %v %v", resp.StatusCode, err)
	}
	if n := e.issuer.Stats().DPoPProofs; n < 4 {
		t.Errorf("%d proofs checked, want code exchange, refresh, userinfo and the other key's", n)
	}
}

func TestDPoPProof(t *testing.T) {
	_, key, c := newDPoPEnv(t)
	ctx := context.Background()
	raw, err := c.Proof(ctx, "post", "https://api.example.com/orders?id=7#top", "the-access-token", "srv-nonce")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := parseJWS(raw)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := tok.header["jwk"].(map[string]any)
	if str(tok.header, "typ") != "dpop+jwt" || str(tok.header, "alg") != "ES256" || len(jwk) != 4 || jwk["d"] != nil {
		t.Errorf("header %v: want typ dpop+jwt, alg ES256, a public jwk of kty, crv, x, y only", tok.header)
	}
	ath := sha256.Sum256([]byte("the-access-token"))
	want := map[string]string{"htm": "POST", "htu": "https://api.example.com/orders", "nonce": "srv-nonce",
		"ath": base64.RawURLEncoding.EncodeToString(ath[:])}
	for k, v := range want {
		if got := str(tok.claims, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if iat, _ := num(tok.claims, "iat"); int64(iat) != c.deps.Clock.Now().Unix() {
		t.Errorf("iat = %v", iat)
	}
	if err := (stdVerifier{}).Verify(ctx, "ES256", jwk, tok.signed, tok.sig); err != nil {
		t.Errorf("the proof does not verify with its own jwk: %v", err)
	}
	pub, _ := key.PublicJWK(ctx)
	if jwk["x"] != pub["x"] || jwk["y"] != pub["y"] {
		t.Error("the proof's jwk is not the key's")
	}
	// Each proof is fresh; the nonce given is remembered for that server.
	again, _ := c.Proof(ctx, "GET", "https://API.example.com/other", "", "")
	tok2, _ := parseJWS(again)
	if str(tok2.claims, "jti") == str(tok.claims, "jti") || len(str(tok.claims, "jti")) < 20 {
		t.Error("jti repeated or short")
	}
	if str(tok2.claims, "nonce") != "srv-nonce" || tok2.claims["ath"] != nil {
		t.Errorf("second proof: %v", tok2.claims)
	}
	if other, _ := c.Proof(ctx, "GET", "https://other.example.com/", "", ""); strings.Contains(other, ".") {
		tok3, _ := parseJWS(other)
		if tok3.claims["nonce"] != nil {
			t.Error("another server's proof carries the nonce")
		}
	}
}

func TestDPoPNonceIsRetriedOnce(t *testing.T) {
	e, _, c := newDPoPEnv(t)
	ctx := context.Background()
	e.issuer.SetDPoPNonce("n-1")
	e.login(c)
	if c.Session().TokenType != "DPoP" {
		t.Fatal("not DPoP-bound")
	}
	// A new nonce: the refresh and the userinfo call each retry once.
	e.issuer.SetDPoPNonce("n-2")
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	e.issuer.SetDPoPNonce("n-3")
	if _, err := c.UserInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.issuer.Stats().NonceChallenges; n != 3 {
		t.Errorf("%d nonce challenges, want 3 (code exchange, refresh, userinfo), each answered once", n)
	}
}

// failingTransport answers every request with use_dpop_nonce and a new
// nonce: the client must not retry for ever.
type nonceLoop struct{ calls int }

func (n *nonceLoop) Do(_ context.Context, req Request) (Response, error) {
	if strings.HasSuffix(req.URL, "openid-configuration") {
		body := `{"issuer":"http://op","authorization_endpoint":"http://op/a","token_endpoint":"http://op/t","jwks_uri":"http://op/j","dpop_signing_alg_values_supported":["ES256"]}`
		return Response{Status: 200, Body: []byte(body)}, nil
	}
	n.calls++
	return Response{Status: 400, Header: map[string]string{"dpop-nonce": "n" + string(rune('a'+n.calls))},
		Body: []byte(`{"error":"use_dpop_nonce"}`)}, nil
}

func TestDPoPNonceRetryIsBounded(t *testing.T) {
	loop := &nonceLoop{}
	c, err := New(Config{Issuer: "http://op", ClientID: "x", RedirectURI: "http://app/cb"},
		Deps{Transport: loop, Verifier: stdVerifier{}, Random: rand.Reader, ProofKey: &memProofKey{}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Discovery(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.postToken(context.Background(), d, params{{"grant_type", "refresh_token"}}, true)
	if ErrorCode(err) != "use_dpop_nonce" || loop.calls != 2 {
		t.Errorf("err %v after %d requests, want use_dpop_nonce after 2", err, loop.calls)
	}
}

func TestDPoPOff(t *testing.T) {
	for name, setup := range map[string]func(*oidctest.Config, *Config, *Deps){
		"setting off":         func(_ *oidctest.Config, c *Config, _ *Deps) { c.DisableDPoP = true },
		"no key":              func(_ *oidctest.Config, _ *Config, d *Deps) { d.ProofKey = nil },
		"broker without DPoP": func(o *oidctest.Config, _ *Config, _ *Deps) { o.DPoP = false },
	} {
		t.Run(name, func(t *testing.T) {
			ocfg := oidctest.Config{Alg: "ES256", DPoP: true}
			cfg, deps := Config{}, Deps{ProofKey: &memProofKey{}}
			setup(&ocfg, &cfg, &deps)
			e := newEnvWith(t, ocfg)
			full := e.config()
			full.DisableDPoP = cfg.DisableDPoP
			d := e.deps()
			d.ProofKey = deps.ProofKey
			c, err := New(full, d)
			if err != nil {
				t.Fatal(err)
			}
			e.login(c)
			if tt := c.Session().TokenType; tt != "Bearer" {
				t.Errorf("token type %q, want Bearer", tt)
			}
			if _, err := c.UserInfo(context.Background()); err != nil {
				t.Error(err)
			}
			if n := e.issuer.Stats().DPoPProofs; n != 0 {
				t.Errorf("%d proofs sent with DPoP off", n)
			}
		})
	}
}

func TestDPoPKeyRotatesOnLogout(t *testing.T) {
	e, key, c := newDPoPEnv(t)
	ctx := context.Background()
	e.login(c)
	before, _ := key.PublicJWK(ctx)
	if _, err := c.Logout(ctx, LogoutOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _ := key.PublicJWK(ctx)
	if key.rotated != 1 || before["x"] == after["x"] {
		t.Errorf("rotated %d times; key changed: %v", key.rotated, before["x"] != after["x"])
	}
	// The next login is bound to the new key.
	e.login(c)
	delete(after, "ext")
	if c.Session().JKT != thumbprint(after) {
		t.Error("the next session is not bound to the new key")
	}
}

func TestDPoPBroadcastForgetsTheKey(t *testing.T) {
	_, key, c := newDPoPEnv(t)
	c.HandleBroadcast(context.Background(), broadcastLoggedOut)
	if key.forgot != 1 {
		t.Errorf("Forget called %d times, want 1", key.forgot)
	}
}

// brokenKey fails to sign: the session is kept (a transient error), not ended.
type brokenKey struct{ memProofKey }

func (*brokenKey) Sign(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("IndexedDB is gone")
}

func TestDPoPKeyFailureKeepsTheSession(t *testing.T) {
	e, key, c := newDPoPEnv(t)
	e.login(c)
	c.deps.ProofKey = &brokenKey{memProofKey{key: key.get()}}
	err := c.Refresh(context.Background())
	if ErrorCode(err) != CodeDPoPKey || c.Status() != StatusAuthenticated {
		t.Errorf("refresh with a broken key: %v, status %s", err, c.Status())
	}
}
