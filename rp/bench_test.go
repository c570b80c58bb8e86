package rp_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// BenchmarkVerify compares, on the same RS256 token, the whole rp check
// (parse, typ, cached key lookup, signature, claims) with the bare RSA
// signature verification it contains. Target: rp ≥ 90 % of raw throughput.
//
//	go test ./rp -run '^$' -bench Verify -benchtime 2s
func BenchmarkVerify(b *testing.B) {
	iss := rptest.NewIssuer(b)
	v, err := rp.NewVerifier(b.Context(), iss.URL, rp.WithAudience(testAudience), rp.WithLogger(quietLogger))
	if err != nil {
		b.Fatal(err)
	}
	token := iss.Sign(rptest.Claims{"sub": "user-1", "aud": testAudience, "scope": "openid profile checkout",
		"client_id": "spa"})
	pub := iss.PrivateKey(iss.SigningKeyID()).Public().(*rsa.PublicKey)

	dot := strings.LastIndexByte(token, '.')
	input, sigB64 := token[:dot], token[dot+1:]
	raw := func() {
		sig, err := base64.RawURLEncoding.DecodeString(sigB64)
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte(input))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
	verify := func() {
		if _, err := v.Verify(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("raw-rs256", func(b *testing.B) {
		for b.Loop() {
			raw()
		}
	})
	b.Run("rp", func(b *testing.B) {
		for b.Loop() {
			verify()
		}
	})
	// Both, interleaved, so that load from other processes hits them
	// alike; the medians of the per-token times ignore the spikes of
	// preemption. rp-%-of-raw is rp's throughput relative to raw's.
	b.Run("interleaved", func(b *testing.B) {
		var rawTimes, rpTimes []time.Duration
		for b.Loop() {
			t0 := time.Now()
			raw()
			t1 := time.Now()
			verify()
			t2 := time.Now()
			rawTimes = append(rawTimes, t1.Sub(t0))
			rpTimes = append(rpTimes, t2.Sub(t1))
		}
		reportMedians(b, "raw", rawTimes, rpTimes)
	})
}

// reportMedians reports the medians of the times of a baseline (named
// base) and of rp, and rp's throughput relative to the baseline's:
// rp-%-of-<base>.
func reportMedians(b *testing.B, base string, baseTimes, rpTimes []time.Duration) {
	baseMedian, rpMedian := median(baseTimes), median(rpTimes)
	b.ReportMetric(float64(baseMedian.Nanoseconds()), base+"-median-ns")
	b.ReportMetric(float64(rpMedian.Nanoseconds()), "rp-median-ns")
	b.ReportMetric(100*float64(baseMedian)/float64(rpMedian), "rp-%-of-"+base)
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkVerifyDPoP compares, for one DPoP request, the whole rp check
// (VerifyDPoP: the RS256 access token as Verify checks it, then the ES256
// proof — header, public jwk, signature, htm/htu, iat, ath, RFC 7638
// thumbprint against cnf.jkt, the in-memory replay cache) with its floor:
// the bare RS256 signature check of the token plus the bare ES256 signature
// check of the proof. Each round signs a fresh proof (untimed) and times
// floor and rp on it side by side; the medians and rp-%-of-floor are
// reported. Target: rp ≥ 90 % of the floor's throughput.
//
//	go test ./rp -run '^$' -bench VerifyDPoP -benchtime 20000x
func BenchmarkVerifyDPoP(b *testing.B) {
	iss := rptest.NewIssuer(b)
	// The clock moves 1 ms a round, so proofs leave the replay cache's
	// window as in a steady stream of requests and it stays bounded.
	start := time.Now()
	var rounds int64
	now := func() time.Time { return start.Add(time.Duration(rounds) * time.Millisecond) }
	v, err := rp.NewVerifier(b.Context(), iss.URL, rp.WithAudience(testAudience), rp.WithLogger(quietLogger), rp.WithClock(now))
	if err != nil {
		b.Fatal(err)
	}
	holder, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := dpop.NewSigner(holder)
	if err != nil {
		b.Fatal(err)
	}
	token := iss.Sign(rptest.Claims{"sub": "user-1", "aud": testAudience, "scope": "openid profile checkout",
		"client_id": "spa", "cnf": map[string]string{"jkt": signer.JKT()}})
	const url = "https://api.example.test/api/profile"
	rsaPub := iss.PrivateKey(iss.SigningKeyID()).Public().(*rsa.PublicKey)

	dot := strings.LastIndexByte(token, '.')
	floor := func(proof string) {
		sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		digest := sha256.Sum256([]byte(token[:dot]))
		if err := rsa.VerifyPKCS1v15(rsaPub, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
		pdot := strings.LastIndexByte(proof, '.')
		psig, err := base64.RawURLEncoding.DecodeString(proof[pdot+1:])
		if err != nil {
			b.Fatal(err)
		}
		pdigest := sha256.Sum256([]byte(proof[:pdot]))
		r, s := new(big.Int).SetBytes(psig[:32]), new(big.Int).SetBytes(psig[32:])
		if !ecdsa.Verify(&holder.PublicKey, pdigest[:], r, s) {
			b.Fatal("ES256 proof does not verify")
		}
	}
	var floorTimes, rpTimes []time.Duration
	for b.Loop() { // ns/op counts the signing too: read the medians
		rounds++
		proof, err := signer.Proof("GET", url, dpop.ProofOptions{AccessToken: token, IssuedAt: now()})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		floor(proof)
		t1 := time.Now()
		if _, err := v.VerifyDPoP(b.Context(), token, proof, "GET", url); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		floorTimes = append(floorTimes, t1.Sub(t0))
		rpTimes = append(rpTimes, t2.Sub(t1))
	}
	reportMedians(b, "floor", floorTimes, rpTimes)
}
