package rp

import (
	"encoding/json"
	"slices"
	"testing"
)

// referencePayload decodes a payload with encoding/json, member by member
// and with exact names, as scanPayload means to.
func referencePayload(b []byte) (payload, error) {
	var p payload
	var cnf *struct {
		JKT string `json:"jkt"`
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return p, err
	}
	if members == nil {
		return p, errNotObject
	}
	fields := map[string]any{
		"iss": &p.Issuer, "sub": &p.Subject, "jti": &p.ID, "client_id": &p.ClientID, "scope": &p.Scope,
		"aud": &p.Audience, "scp": &p.Scp, "exp": &p.ExpiresAt, "iat": &p.IssuedAt, "nbf": &p.NotBefore, "cnf": &cnf,
	}
	for name, dst := range fields {
		if raw, ok := members[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return p, err
			}
		}
	}
	if cnf != nil {
		p.JKT = cnf.JKT
	}
	return p, nil
}

func samePayload(a, b payload) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.ID == b.ID && a.ClientID == b.ClientID &&
		a.Scope == b.Scope && slices.Equal(a.Audience, b.Audience) && slices.Equal(a.Scp, b.Scp) &&
		(a.Audience == nil) == (b.Audience == nil) && (a.Scp == nil) == (b.Scp == nil) &&
		a.ExpiresAt.time().Equal(b.ExpiresAt.time()) && a.IssuedAt.time().Equal(b.IssuedAt.time()) &&
		a.NotBefore.time().Equal(b.NotBefore.time()) && a.JKT == b.JKT
}

var payloadSeeds = []string{
	`{"aud":"https://api.example.test","client_id":"spa","exp":1764201600,"iat":1764200000,"iss":"http://127.0.0.1:41234","jti":"j","scope":"openid checkout","sub":"user-1"}`,
	`{"aud":["a","b"],"exp":1764201600.5,"nbf":null,"scp":["read","write"],"x":{"y":[1,2,{"z":"w"}],"t":true,"f":false,"n":null}}`,
	` { "sub" : "caf\u00e9 \"quoted\" \\ \/" , "iss":"x", "iss":"y", "e":-1.5e+10 } `,
	`{"sub":"snow ☃","aud":[],"scp":null}`,
	`{"cnf":{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","x5t#S256":"x"},"sub":"bound"}`,
	`{"cnf":{"jkt":"a"},"cnf":{"x":1}}`,
	`{"cnf":{"jkt":null}}`,
	`{"cnf":null}`,
	`{"cnf":{"jkt":1}}`,
	`{"cnf":"jkt"}`,
	`{"cnf":{"jkt":"a",}}`,
	`{}`,
	`[]`,
	`{"sub":1}`,
	`{"exp":"soon"}`,
	`{"a":01}`,
	`{"a":tru}`,
	`{"a":"\x"}`,
	`{"a":1,}`,
	`{"a":1} x`,
	`{"sub":"a`,
}

func TestScanPayloadAgreesWithEncodingJSON(t *testing.T) {
	for _, seed := range payloadSeeds {
		checkScan(t, []byte(seed))
	}
}

func FuzzScanPayload(f *testing.F) {
	for _, seed := range payloadSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkScan)
}

func checkScan(t *testing.T, b []byte) {
	got, gotErr := scanPayload(b)
	want, wantErr := referencePayload(b)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: scanPayload err = %v, encoding/json err = %v", b, gotErr, wantErr)
	}
	if gotErr == nil && !samePayload(got, want) {
		t.Fatalf("%q:\nscanPayload  %+v\nencoding/json %+v", b, got, want)
	}
}

func BenchmarkParseClaims(b *testing.B) {
	raw := []byte(`{"aud":"https://api.example.test","client_id":"spa","exp":1764201600,"iat":1764200000,"iss":"http://127.0.0.1:41234","jti":"jti-2","scope":"openid profile checkout","sub":"user-1"}`)
	for b.Loop() {
		if _, err := parseClaims(raw); err != nil {
			b.Fatal(err)
		}
	}
}
