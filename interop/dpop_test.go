package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
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
			token := iss.BoundToken("alice", apiAudience, "openid checkout", holder.Thumbprint())

			// The holder.
			used := holder.Proof("GET", profile, token)
			expectDPoP(t, "the holder", dpopRequest{method: http.MethodGet, url: profile, scheme: "DPoP", token: token,
				proofs: []string{used}}, 200, "", "alice")
			expectDPoP(t, "the holder, POST checkout", dpopRequest{method: http.MethodPost, url: checkout, scheme: "DPoP",
				token: token, proofs: []string{holder.Proof("POST", checkout, token)}}, 200, "", "alice")
			expectDPoP(t, "the holder, htu without the request's query", dpopRequest{method: http.MethodGet,
				url: profile + "?page=2", scheme: "DPoP", token: token, proofs: []string{holder.Proof("GET", profile, token)}}, 200, "", "alice")
			rsaHolder := rptest.NewProofKey(t, jose.RS256)
			rsaToken := iss.BoundToken("carol", apiAudience, "", rsaHolder.Thumbprint())
			expectDPoP(t, "an RS256 holder", dpopRequest{method: http.MethodGet, url: profile, scheme: "DPoP", token: rsaToken,
				proofs: []string{rsaHolder.Proof("GET", profile, rsaToken)}}, 200, "", "carol")

			// The token copied out, proofs for other requests, forgeries.
			for _, abuse := range rptest.Abuses(t, holder, token, profile, checkout, used) {
				expectDPoP(t, abuse.Name, dpopRequest{method: http.MethodGet, url: profile, scheme: abuse.Scheme, token: token,
					proofs: abuse.Proofs}, 401, abuse.Error, "")
			}

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

// TestAPIsVerifyBrokerDPoPTokens: a DPoP-bound token from a real broker
// (client_credentials with a proof) is accepted by each API with its
// holder's proofs, and every abuse of rptest.Abuses is refused: the copy as
// Bearer, without a proof, with another key's proof, a replayed proof…
func TestAPIsVerifyBrokerDPoPTokens(t *testing.T) {
	b := startBroker(t, "RS256")
	holder := rptest.NewProofKey(t, jose.ES256)
	token, tokenType := b.requestToken(t, "backend", "profile checkout", holder.Proof(http.MethodPost, b.issuer+"/oauth2/token", ""))
	if tokenType != "DPoP" {
		t.Fatalf("token_type %q for a token request with a proof, want DPoP", tokenType)
	}
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
			used := holder.Proof("GET", profile, token)
			expectDPoP(t, "the holder", get(profile, used), 200, "", "backend")
			expectDPoP(t, "the holder, checkout", get(checkout, holder.Proof("GET", checkout, token)), 200, "", "backend")
			for _, abuse := range rptest.Abuses(t, holder, token, profile, checkout, used) {
				expectDPoP(t, abuse.Name, dpopRequest{method: http.MethodGet, url: profile, scheme: abuse.Scheme, token: token,
					proofs: abuse.Proofs}, 401, abuse.Error, "")
			}
		})
	}
}
