package broker

// Benchmarks of DPoP at the token endpoint (issue 16): what checking a
// proof costs per token request, and the refresh and client_credentials
// grants with a proof against their floor with the proof's verify in it:
//
//	go test -run '^$' -bench 'DPoP' ./broker/

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/url"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
)

// BenchmarkDPoPProof is the broker's check of one proof: Verify is the
// verifier alone (parse, ES256 signature, claims, thumbprint: what a token
// request adds, its jti's claim riding in the grant's transaction),
// VerifyAndClaim adds the jti's claim as a write of its own (what /userinfo
// does), ES256Floor is the bare ECDSA P-256 verify it cannot avoid.
func BenchmarkDPoPProof(b *testing.B) {
	e := newBenchEnv(b)
	signer, err := dpop.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	htu := e.issuer + pathToken
	b.Run("Verify", func(b *testing.B) {
		proof, _ := signer.Proof(http.MethodPost, htu, dpop.ProofOptions{})
		v := &dpop.Verifier{Algorithms: dpop.DefaultAlgorithms}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(context.Background(), proof, dpop.Request{Method: http.MethodPost, URL: htu}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("VerifyAndClaim", func(b *testing.B) {
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i], _ = signer.Proof(http.MethodPost, htu, dpop.ProofOptions{})
		}
		v := e.srv.dpop.resource
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := v.Verify(context.Background(), proofs[i], dpop.Request{Method: http.MethodPost, URL: htu}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ES256Floor", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sum := sha256.Sum256([]byte("header.payload"))
		sig, _ := ecdsa.SignASN1(rand.Reader, k, sum[:])
		for b.Loop() {
			if !ecdsa.VerifyASN1(&k.PublicKey, sum[:], sig) {
				b.Fatal("verify")
			}
		}
	})
}

// dpopFloor is what a DPoP token request cannot avoid beside the
// response's signatures: the client signing its proof (the benchmark's
// client runs on the same cores) and the broker verifying it.
func dpopFloor(b *testing.B, signer *dpop.Signer, htu string) func() {
	v := &dpop.Verifier{Algorithms: dpop.DefaultAlgorithms}
	return func() {
		proof, err := signer.Proof(http.MethodPost, htu, dpop.ProofOptions{})
		if err == nil {
			_, err = v.Verify(context.Background(), proof, dpop.Request{Method: http.MethodPost, URL: htu})
		}
		if err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkDPoPRefreshVsFloor is BenchmarkRefreshVsFloor with a DPoP proof
// on every refresh (the grant is bound to the key at its first); the floor
// is the response's signatures plus signing and verifying one proof.
func BenchmarkDPoPRefreshVsFloor(b *testing.B) {
	e := newBenchEnv(b)
	signer, err := dpop.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	htu := e.issuer + pathToken
	chains := e.refreshChains(b, 64)
	proofFloor := dpopFloor(b, signer, htu)
	benchmarkVsFloorOf(b, func() { e.signResponse(b, 1); proofFloor() }, func() func() {
		c := <-chains
		return func() { c.refreshWithProof(b, signer, htu) }
	})
}

// BenchmarkDPoPClientCredentialsVsFloor is the same for client_credentials.
func BenchmarkDPoPClientCredentialsVsFloor(b *testing.B) {
	e := newBenchEnv(b)
	signer, err := dpop.GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	htu := e.issuer + pathToken
	h := e.srv.Handler()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	proofFloor := dpopFloor(b, signer, htu)
	benchmarkVsFloorOf(b, func() { e.signResponse(b, 0); proofFloor() }, func() func() {
		return func() {
			req := tokenRequest(form, apiID, apiSecret)
			proof, err := signer.Proof(http.MethodPost, htu, dpop.ProofOptions{})
			if err != nil {
				b.Error(err)
			}
			req.Header.Set("DPoP", proof)
			serve(b, h, req, http.StatusOK)
		}
	})
}

// refreshWithProof is refresh with a fresh proof of signer.
func (c *refreshChain) refreshWithProof(b *testing.B, signer *dpop.Signer, htu string) {
	proof, err := signer.Proof(http.MethodPost, htu, dpop.ProofOptions{})
	if err != nil {
		b.Error(err)
		return
	}
	c.refreshReq(b, func(req *http.Request) { req.Header.Set("DPoP", proof) })
}
