package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
	"github.com/bridgekeeper/bridgekeeper/ops/flow"
)

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
	if proof != "" && req.URL.Path == flow.PathToken {
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
	c := flow.New("spa", replicaRedirect, pt)
	code, err := c.Login(ctx, p.a, replicaEmail, replicaPassword)
	if err != nil {
		t.Fatalf("login on A: %v", err)
	}
	signer, err := dpop.GenerateSigner()
	if err != nil {
		t.Fatal(err)
	}
	proof := func(nonce string) string {
		s, err := signer.Proof(http.MethodPost, p.issuer+flow.PathToken, dpop.ProofOptions{Nonce: nonce})
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
