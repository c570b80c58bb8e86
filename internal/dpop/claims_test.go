package dpop

import (
	"encoding/json"
	"testing"
)

func sameClaims(a, b proofClaims) bool {
	eqS := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqF := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.JTI == b.JTI && a.HTM == b.HTM && a.HTU == b.HTU && eqF(a.IAT, b.IAT) && eqS(a.ATH, b.ATH) && eqS(a.Nonce, b.Nonce)
}

var claimSeeds = []string{
	`{"jti":"Qh2b7Xl9kq0sJm3T4nN5Fw","htm":"GET","htu":"https://api.example.test/api/profile","iat":1765140000,"ath":"fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}`,
	` { "jti" : "a" , "htm":"POST", "htu":"x", "iat": 1.7e9, "nonce":"n", "x": -0.5e-3, "y":"z" } `,
	`{"jti":"a","jti":"b","ath":"1","ath":null}`,
	`{"JTI":"a"}`,
	`{"Iat":1}`,
	`{"iat":"1"}`,
	`{"jti":1}`,
	`{"iat":1e400}`,
	`{"iat":01}`,
	`{"iat":-}`,
	`{"iat":1.}`,
	`{"x":{"jti":"nested"},"jti":"a"}`,
	`{"jti":"caf\u00e9"}`,
	`{"jti":"a"} x`,
	`{"jti":"a",}`,
	`{}`,
	`[]`,
	``,
}

// TestDecodeClaimsAgreesWithEncodingJSON runs the seeds of FuzzDecodeClaims.
func TestDecodeClaimsAgreesWithEncodingJSON(t *testing.T) {
	for _, seed := range claimSeeds {
		checkDecodeClaims(t, []byte(seed))
	}
	if _, ok := scanClaims(claimSeeds[0]); !ok {
		t.Error("a plain proof payload is not read by the fast path")
	}
}

// FuzzDecodeClaims checks that decodeClaims decodes as encoding/json does.
func FuzzDecodeClaims(f *testing.F) {
	for _, seed := range claimSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkDecodeClaims)
}

func checkDecodeClaims(t *testing.T, b []byte) {
	var want proofClaims
	wantErr := json.Unmarshal(b, &want)
	got, err := decodeClaims(b)
	if (err != nil) != (wantErr != nil) || (err == nil && !sameClaims(got, want)) {
		t.Fatalf("%q: decodeClaims = %+v, %v; encoding/json = %+v, %v", b, got, err, want, wantErr)
	}
}
