package broker

import (
	"encoding/json"
	"reflect"
	"testing"
)

// sessionJSONSeeds are stored sessions and near misses: every field
// filled (fillValue), empty ones, nulls everywhere, escapes, other key
// cases (which encoding/json matches), unknown keys, wrong kinds,
// duplicate keys, numbers of every form, invalid JSON.
func sessionJSONSeeds(t testing.TB) []string {
	filled := &session{}
	fillValue(reflect.ValueOf(filled).Elem(), 0)
	seeds := []string{}
	for _, s := range []*session{filled, newSession(), {}, {ClientID: "c"}} {
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, string(js))
	}
	return append(seeds,
		`{"oidc":{"id_token_claims":{"jti":"j","iss":"https://i","sub":"u1","aud":["c1"],"nonce":"","exp":"0001-01-01T00:00:00Z","iat":"2026-12-07T01:02:03.000000004+01:00","rat":"2026-12-07T01:02:03Z","auth_time":"2026-12-07T01:02:03Z","at_hash":"","acr":"","amr":["pwd"],"c_hash":"","ext":{"email":"a@example.com","email_verified":true,"idp":"local","name":"Zo\u00eb \"A\" <b>","updated_at":1765000000,"n":-1.5e-7,"list":[1,"x",null,{"k":[]}],"o":{}}},"headers":{"extra":{}},"expires_at":{"access_token":"2026-12-07T01:17:03.123Z","refresh_token":"2027-01-06T01:02:03Z"},"username":"","subject":"u1"},"client_id":"spa","idp_sub":"up","dpop_jkt":"k1","cnf_jkt":"k2"}`,
		`{"oidc":null,"client_id":null}`,
		`{"oidc":{"id_token_claims":null,"headers":null,"expires_at":null,"username":null,"subject":null}}`,
		`{"oidc":{"id_token_claims":{"aud":null,"amr":[],"ext":null,"exp":null},"headers":{"extra":null},"expires_at":{"id_token":null}}}`,
		`{"OIDC":{"Subject":"u"},"Client_ID":"c"}`,
		`{"oidc":{"subject":"u"},"unknown":[1,2,{"a":null}]}`,
		`{"oidc":{"id_token_claims":{"ext":{"a":1}}},"oidc":{"id_token_claims":{"ext":{"b":2},"aud":["x"]}}}`,
		`{"client_id":1}`, `{"client_id":true}`, `{"oidc":{"id_token_claims":{"aud":"c1"}}}`,
		`{"oidc":{"id_token_claims":{"aud":[1]}}}`, `{"oidc":{"id_token_claims":{"exp":"yesterday"}}}`,
		`{"oidc":{"id_token_claims":{"exp":5}}}`, `{"oidc":{"expires_at":{"access_token":"bad"}}}`,
		`{"oidc":{"id_token_claims":{"ext":{"big":1e400}}}}`, `{"oidc":{"id_token_claims":{"ext":{"neg":-0,"e":2E+3}}}}`,
		`{"oidc":{"headers":{"extra":{"typ":"JWT"},"other":1}}}`, `{"client_id":"a\u0000b\ud800"}`,
		`{"client_id":"caf`+"\xff"+`"}`, `null`, `[]`, `"s"`, `{}`, ` { "client_id" : "c" } `,
		`{"oidc":{"id_token_claims":{"ext":{"a":1}},"expires_at":{"x":null}},"OIDC":{}}`, `{"client_id":"x","client_id":5}`,
		`{"oidc":{"id_token_claims":{"ext":null,"aud":["a"]}},"oidc":{"id_token_claims":{"ext":{"b":[]},"Aud":null}}}`,
		`{"client_id":"c"`, `{"client_id":"c"}x`, `{"client_id":nul}`, ``, `{"a":[1,]}`,
	)
}

// TestSessionReadAsReflection: UnmarshalJSON reads every seed as
// encoding/json reads it by reflection, into a fresh session and into a
// filled one (members replace or merge).
func TestSessionReadAsReflection(t *testing.T) {
	for _, js := range sessionJSONSeeds(t) {
		checkSessionRead(t, []byte(js))
	}
}

func FuzzSessionRead(f *testing.F) {
	for _, js := range sessionJSONSeeds(f) {
		f.Add([]byte(js))
	}
	f.Fuzz(checkSessionRead)
}

func checkSessionRead(t *testing.T, data []byte) {
	t.Helper()
	filled := func() *session {
		s := newSession()
		s.ClientID, s.Subject, s.Claims.Extra = "old", "old", map[string]any{"old": true}
		return s
	}
	for name, fresh := range map[string]func() *session{"newSession": newSession, "zero": func() *session { return &session{} }, "filled": filled} {
		got, want := fresh(), fresh()
		errGot := json.Unmarshal(data, got)
		errWant := json.Unmarshal(data, (*sessionFields)(want))
		if (errGot == nil) != (errWant == nil) {
			t.Errorf("%s %q: error %v, encoding/json %v", name, data, errGot, errWant)
			continue
		}
		if errWant == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s %q:\n got %#v\nwant %#v", name, data, got, want)
		}
		direct := fresh()
		if err := direct.UnmarshalJSON(data); (err == nil) != (errWant == nil) && json.Valid(data) {
			t.Errorf("%s %q: UnmarshalJSON error %v, encoding/json %v", name, data, err, errWant)
		} else if errWant == nil && !reflect.DeepEqual(direct, want) {
			t.Errorf("%s %q: UnmarshalJSON read differs", name, data)
		}
	}
}

// TestSessionReadFastPath: what the broker stores is read without
// reflection (else UnmarshalJSON would be correct but no faster).
func TestSessionReadFastPath(t *testing.T) {
	for _, js := range sessionJSONSeeds(t)[:5] {
		// Into an empty session, and into one read before (a grant's
		// session is read again during a refresh).
		read := newSession()
		for range 2 {
			r := sessionReader{data: []byte(js)}
			if err := r.session(read); err != nil || !r.end() {
				t.Errorf("%s: not read directly (%v)", js, err)
			}
		}
	}
}
