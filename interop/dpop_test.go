package interop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// dpopRequest is a request to an API: its Authorization scheme and token,
// and the values of its DPoP headers.
type dpopRequest struct {
	method, url   string
	scheme, token string
	proofs        []string
}

// dpopReply is an API's answer, with every WWW-Authenticate value.
type dpopReply struct {
	reply
	challenges []string
}

func sendDPoP(t *testing.T, r dpopRequest) dpopReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", r.scheme+" "+r.token)
	}
	for _, p := range r.proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out dpopReply
	if err := json.Unmarshal(body, &out.reply); err != nil {
		t.Fatalf("%s %s: %d, body is not JSON: %q", r.method, r.url, resp.StatusCode, body)
	}
	out.Status = resp.StatusCode
	out.challenges = resp.Header.Values("WWW-Authenticate")
	out.Challenge = strings.Join(out.challenges, " | ")
	return out
}

// expectDPoP checks the answer to r: 200 with subject sub, or 401 with the
// RFC 9449 error code in both the body and a DPoP challenge.
func expectDPoP(t *testing.T, what string, r dpopRequest, status int, errorCode, sub string) {
	t.Helper()
	got := sendDPoP(t, r)
	if got.Status != status || got.Error != errorCode || (sub != "" && got.Subject != sub) {
		t.Errorf("%s: got %d error=%q sub=%q description=%q (WWW-Authenticate %q), want %d error=%q sub=%q",
			what, got.Status, got.Error, got.Subject, got.Description, got.Challenge, status, errorCode, sub)
		return
	}
	t.Logf("%s: %d %s %q", what, got.Status, got.Error, got.Description)
	if errorCode != "" && status == http.StatusUnauthorized {
		want := `error="` + errorCode + `"`
		if len(got.challenges) != 1 || !strings.HasPrefix(got.challenges[0], "DPoP ") || !strings.Contains(got.challenges[0], want) {
			t.Errorf("%s: WWW-Authenticate %q, want one DPoP challenge with %s", what, got.Challenge, want)
		}
	}
}

// TestAPIsVerifyDPoPProofs presents a DPoP-bound access token (cnf.jkt) to
// each API with its holder's proofs, and as a thief would: copied without a
// proof, with proofs for another request, replayed, too old, signed by
// another key, or forged (alg none, HS256, a private jwk). The holder is
// accepted; every abuse is refused with RFC 9449's error.
func TestAPIsVerifyDPoPProofs(t *testing.T) {
	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			iss := rptest.NewIssuer(t)
			base := kind.start(t, iss.URL, apiAudience)
			profile, checkout := base+"/api/profile", base+"/api/checkout"
			holder := rptest.NewProofKey(t, jose.ES256)
			thief := rptest.NewProofKey(t, jose.ES256)
			token := iss.BoundToken("alice", apiAudience, "openid checkout", holder.Thumbprint())
			get := func(proofs ...string) dpopRequest {
				return dpopRequest{method: http.MethodGet, url: profile, scheme: "DPoP", token: token, proofs: proofs}
			}
			now := time.Now().Unix()
			proofClaims := func(extra rptest.Claims) rptest.Claims {
				c := rptest.Claims{"htm": "GET", "htu": profile, "ath": rptest.ATH(token)}
				for k, v := range extra {
					c[k] = v
				}
				return c
			}

			// The holder.
			first := holder.Proof("GET", profile, token)
			expectDPoP(t, "the holder", get(first), 200, "", "alice")
			expectDPoP(t, "the holder, POST checkout", dpopRequest{method: http.MethodPost, url: checkout, scheme: "DPoP",
				token: token, proofs: []string{holder.Proof("POST", checkout, token)}}, 200, "", "alice")
			expectDPoP(t, "the holder, htu without the request's query", dpopRequest{method: http.MethodGet,
				url: profile + "?page=2", scheme: "DPoP", token: token, proofs: []string{holder.Proof("GET", profile, token)}}, 200, "", "alice")
			rsaHolder := rptest.NewProofKey(t, jose.RS256)
			rsaToken := iss.BoundToken("carol", apiAudience, "", rsaHolder.Thumbprint())
			expectDPoP(t, "an RS256 holder", dpopRequest{method: http.MethodGet, url: profile, scheme: "DPoP", token: rsaToken,
				proofs: []string{rsaHolder.Proof("GET", profile, rsaToken)}}, 200, "", "carol")

			// The token copied out, used without the key.
			expectDPoP(t, "copied token as Bearer", dpopRequest{method: http.MethodGet, url: profile, scheme: "Bearer", token: token},
				401, "invalid_token", "")
			expectDPoP(t, "copied token, no proof", get(), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "copied token, a proof by another key", get(thief.Proof("GET", profile, token)), 401, "invalid_token", "")

			// Proofs that do not fit the request.
			expectDPoP(t, "replayed proof", get(first), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof for another URL", get(holder.Proof("GET", checkout, token)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof for another host", get(holder.Proof("GET", "http://127.0.0.1:1/api/profile", token)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof for another method", get(holder.Proof("POST", profile, token)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof with an old iat", get(holder.ProofWith(proofClaims(rptest.Claims{"iat": now - 600}), nil)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof with an iat in the future", get(holder.ProofWith(proofClaims(rptest.Claims{"iat": now + 600}), nil)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof for another token", get(holder.Proof("GET", profile, iss.BoundToken("alice", apiAudience, "", holder.Thumbprint()))), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof without ath", get(holder.ProofWith(proofClaims(rptest.Claims{"ath": nil}), nil)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "proof without jti", get(holder.ProofWith(proofClaims(rptest.Claims{"jti": nil}), nil)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "two proofs", get(holder.Proof("GET", profile, token), holder.Proof("GET", profile, token)), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "typ JWT", get(holder.ProofWith(proofClaims(nil), map[string]any{"typ": "JWT"})), 401, "invalid_dpop_proof", "")

			// Forged proofs.
			header := map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": holder.PublicJWK()}
			expectDPoP(t, "alg none", get(rptest.Unsigned(t, header, proofClaims(rptest.Claims{"jti": "none-1", "iat": now}))),
				401, "invalid_dpop_proof", "")
			expectDPoP(t, "HS256", get(hs256Proof(t, holder, proofClaims(rptest.Claims{"jti": "hs-1", "iat": now}))), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "private jwk", get(holder.ProofWith(proofClaims(nil), map[string]any{"jwk": holder.PrivateJWK()})),
				401, "invalid_dpop_proof", "")
			expectDPoP(t, "bad signature", get(tamper(holder.Proof("GET", profile, token))), 401, "invalid_dpop_proof", "")

			// Unbound tokens keep working as Bearer, and only so.
			unbound := iss.Token("bob", apiAudience, "openid")
			expect(t, "unbound token as Bearer", profile, unbound, 200, "", "bob")
			expectDPoP(t, "unbound token with the DPoP scheme", dpopRequest{method: http.MethodGet, url: profile, scheme: "DPoP",
				token: unbound, proofs: []string{holder.Proof("GET", profile, unbound)}}, 401, "invalid_token", "")

			// No token: both schemes offered.
			none := sendDPoP(t, dpopRequest{method: http.MethodGet, url: profile})
			if none.Status != 401 || !strings.HasPrefix(none.Challenge, "Bearer ") || !strings.Contains(none.Challenge, `DPoP realm="api", algs="`) {
				t.Errorf("no token: %d, WWW-Authenticate %q; want 401 offering Bearer and DPoP with its algs", none.Status, none.Challenge)
			}
		})
	}
}

// hs256Proof is a proof MACed with HS256 keyed by the holder's public JWK
// (what an attacker has): a verifier that lets the proof choose its
// algorithm would accept it.
func hs256Proof(t *testing.T, holder *rptest.ProofKey, claims rptest.Claims) string {
	t.Helper()
	pub := holder.PublicJWK()
	secret, err := json.Marshal(&pub)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := strings.TrimSuffix(rptest.Unsigned(t, map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": pub}, claims), ".")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tamper flips a bit of a JWS's signature.
func tamper(jws string) string {
	dot := strings.LastIndexByte(jws, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(jws[dot+1:])
	sig[len(sig)/2] ^= 1
	return jws[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// dpopToken gets an access token with the client_credentials grant and a
// DPoP proof by key: the broker binds it to key (cnf.jkt, token_type DPoP).
func (b *realBroker) dpopToken(t *testing.T, clientID, scope string, key *rptest.ProofKey) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tokenURL := b.issuer + "/oauth2/token"
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", key.Proof(http.MethodPost, tokenURL, ""))
	req.SetBasicAuth(clientID, backendSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" || body.TokenType != "DPoP" {
		t.Fatalf("DPoP token for %s: %d %+v %v", clientID, resp.StatusCode, body, err)
	}
	return body.AccessToken
}

// TestAPIsVerifyBrokerDPoPTokens: a DPoP-bound token from a real broker
// (client_credentials with a proof) is accepted by each API with its
// holder's proofs, and refused copied out: as Bearer, without a proof, with
// another key's proof, with a replayed proof.
func TestAPIsVerifyBrokerDPoPTokens(t *testing.T) {
	b := startBroker(t, "RS256")
	holder := rptest.NewProofKey(t, jose.ES256)
	thief := rptest.NewProofKey(t, jose.ES256)
	token := b.dpopToken(t, "backend", "profile checkout", holder)
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Cnf.JKT != holder.Thumbprint() {
		t.Fatalf("the broker's token carries cnf.jkt %q (%v), want the holder's %q", claims.Cnf.JKT, err, holder.Thumbprint())
	}
	for _, kind := range apiKinds {
		t.Run(kind.name, func(t *testing.T) {
			base := kind.start(t, b.issuer, apiAudience)
			profile, checkout := base+"/api/profile", base+"/api/checkout"
			get := func(url string, proofs ...string) dpopRequest {
				return dpopRequest{method: http.MethodGet, url: url, scheme: "DPoP", token: token, proofs: proofs}
			}
			proof := holder.Proof("GET", profile, token)
			expectDPoP(t, "the holder", get(profile, proof), 200, "", "backend")
			expectDPoP(t, "the holder, checkout", get(checkout, holder.Proof("GET", checkout, token)), 200, "", "backend")
			expectDPoP(t, "replayed proof", get(profile, proof), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "copied token as Bearer", dpopRequest{method: http.MethodGet, url: profile, scheme: "Bearer", token: token},
				401, "invalid_token", "")
			expectDPoP(t, "copied token, no proof", get(profile), 401, "invalid_dpop_proof", "")
			expectDPoP(t, "copied token, the thief's proof", get(profile, thief.Proof("GET", profile, token)), 401, "invalid_token", "")
		})
	}
}
