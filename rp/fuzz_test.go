package rp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// FuzzVerify feeds Verify arbitrary tokens, seeded with valid ones and
// their near misses: it must never panic, must refuse with an error that
// says why, and may only accept tokens the issuer signed.
func FuzzVerify(f *testing.F) {
	iss := rptest.NewIssuer(f)
	v, err := rp.NewVerifier(context.Background(), iss.URL, rp.WithAudience(testAudience), rp.WithLogger(quietLogger))
	if err != nil {
		f.Fatal(err)
	}
	good := iss.Token("alice", testAudience, "openid checkout")
	f.Add(good)
	f.Add(iss.SignWith(rptest.Claims{"aud": []string{testAudience, "x"}, "nbf": 1, "scp": []string{"a"}},
		map[jose.HeaderKey]any{jose.HeaderType: "application/at+jwt"}))
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add(good[:len(good)-3])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, rp.ErrInvalidToken) && !errors.Is(err, rp.ErrKeysUnavailable) {
				t.Fatalf("error %v matches neither ErrInvalidToken nor ErrKeysUnavailable", err)
			}
			return
		}
		if claims.Issuer != iss.URL || !claims.HasAudience(testAudience) {
			t.Fatalf("accepted %q with claims %+v", raw, claims)
		}
	})
}
