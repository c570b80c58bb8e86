package e2e

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// tokenPath is the token endpoint under the issuer.
const tokenPath = "/oauth2/token"

// proofTransport adds the DPoP proof it is given to the next token
// request, and remembers the last DPoP-Nonce it was sent.
type proofTransport struct {
	mu        sync.Mutex
	proof     string
	lastNonce string
}

func (p *proofTransport) set(proof string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proof = proof
}

func (p *proofTransport) nonce() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastNonce
}

func (p *proofTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	proof := p.proof
	p.mu.Unlock()
	if proof != "" && req.URL.Path == tokenPath {
		req = req.Clone(req.Context())
		req.Header.Set("DPoP", proof)
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && res.Header.Get("DPoP-Nonce") != "" {
		p.mu.Lock()
		p.lastNonce = res.Header.Get("DPoP-Nonce")
		p.mu.Unlock()
	}
	return res, err
}

// TestReplicasShareDPoPReplayCache: two replicas on Postgres with server
// nonces on. A nonce handed out by A is good at B (stateless nonces under
// the shared system secret), and a proof used at B is refused at A
// (the replay cache is the database). A use_dpop_nonce answer spends
// nothing: the code it refused is redeemed on the retry.
func TestReplicasShareDPoPReplayCache(t *testing.T) {
	p := startReplicas(t, "--dpop.nonce")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pt := &proofTransport{}
	c := p.client()
	c.HTTP.Transport = pt
	code, err := c.Login(ctx, p.a, replicaEmail, replicaPassword)
	if err != nil {
		t.Fatalf("login on A: %v", err)
	}
	signer, err := dpop.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	proof := func(nonce string) string {
		s, err := signer.Proof(http.MethodPost, p.issuer+tokenPath, dpop.ProofOptions{Nonce: nonce})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	pt.set(proof(""))
	if tok, err := c.Exchange(ctx, p.a, code); err != nil || tok.Error != "use_dpop_nonce" || pt.nonce() == "" {
		t.Fatalf("proof without nonce on A: %v %v (nonce %q)", tok, err, pt.nonce())
	}
	used := proof(pt.nonce())
	pt.set(used)
	tok, err := c.Exchange(ctx, p.b, code)
	if err != nil || !tok.OK() || tok.TokenType != "DPoP" {
		t.Fatalf("A's nonce on B: %v %v (token_type %q)", tok, err, tok.TokenType)
	}
	// The proof B accepted, replayed at A.
	if again, err := c.Refresh(ctx, p.a, tok.RefreshToken); err != nil || again.Status != http.StatusBadRequest || again.Error != "invalid_dpop_proof" {
		t.Fatalf("proof used on B replayed on A: %v %v", again, err)
	}
	// The refresh token is bound: without a proof it is refused on both.
	pt.set("")
	for _, base := range []string{p.a, p.b} {
		if stolen, err := c.Refresh(ctx, base, tok.RefreshToken); err != nil || stolen.Error != "invalid_grant" {
			t.Fatalf("bound refresh token without a proof on %s: %v %v", base, stolen, err)
		}
	}
	pt.set(proof(pt.nonce()))
	if fresh, err := c.Refresh(ctx, p.a, tok.RefreshToken); err != nil || !fresh.OK() || fresh.TokenType != "DPoP" {
		t.Fatalf("a fresh proof on A: %v %v", fresh, err)
	}
}

// TestOpenIDClientDPoP: openid-client's DPoP handle (getDPoPHandle) logs
// in, refreshes and calls userinfo against a broker whose public client is
// registered with --require-dpop and which requires server nonces; its
// requests without a proof, with another key, and its token as Bearer are
// refused. See oidc-client/dpop.mjs for the checks.
func TestOpenIDClientDPoP(t *testing.T) {
	testenv.Require(t, testenv.FileExists("oidc-client/node_modules/openid-client"), "openid-client (npm ci --prefix e2e/oidc-client)")
	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("e2e-secret-", 4)}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "bk.db")
	addr := testenv.FreeAddr(t)
	issuer := "http://" + addr
	redirect := "http://127.0.0.1:5173/callback"
	testenv.CLI(t, env, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public",
		"--redirect-uri", redirect, "--allowed-origin", "http://127.0.0.1:5173", "--require-dpop")
	testenv.CLI(t, env, "correct horse battery staple\n", "user", "create", "--dsn", dsn,
		"--email", "ada@example.com", "--password-stdin")
	testenv.Serve(t, env, issuer, "--issuer", issuer, "--listen", addr, "--dsn", dsn, "--dpop.nonce")

	runNode(t, "oidc-client", "dpop.mjs",
		"BK_ISSUER="+issuer,
		"BK_PUBLIC_CLIENT=spa",
		"BK_REDIRECT_URI="+redirect,
		"BK_EMAIL=ada@example.com",
		"BK_PASSWORD=correct horse battery staple",
	)
}
