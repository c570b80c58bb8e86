package rp_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

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
		rawMedian, rpMedian := median(rawTimes), median(rpTimes)
		b.ReportMetric(float64(rawMedian.Nanoseconds()), "raw-median-ns")
		b.ReportMetric(float64(rpMedian.Nanoseconds()), "rp-median-ns")
		b.ReportMetric(100*float64(rawMedian)/float64(rpMedian), "rp-%-of-raw")
	})
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
