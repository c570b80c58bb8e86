package broker

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// TestSessionJSONAsReflection: MarshalJSON writes what encoding/json wrote
// by reflection, byte for byte, for a session with every field filled
// (reflection fills a field added later too), an empty one, one with nil
// parts, and times in other zones; and encoding/json reads it back equal.
func TestSessionJSONAsReflection(t *testing.T) {
	filled := &session{}
	fillValue(reflect.ValueOf(filled).Elem(), 0)
	zoned := newSession()
	zoned.Claims.AuthTime = time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("", -(3*3600+30*60)))
	zoned.ExpiresAt = map[fosite.TokenType]time.Time{fosite.RefreshToken: time.Now(), fosite.AccessToken: time.Now().UTC(), fosite.IDToken: {}}
	zoned.Claims.Extra = map[string]any{"name": "Zoë <&>", "updated_at": float64(1765000000), "email_verified": true, "idp": "local"}
	zoned.Claims.Audience = []string{}
	zoned.Headers.Extra = map[string]any{}
	zoned.IDPSubject, zoned.DPoPJKT, zoned.AccessJKT, zoned.ClientID = "up", "jkt1", "jkt2", "c1"
	sessions := map[string]*session{
		"filled":        filled,
		"new":           newSession(),
		"zoned":         zoned,
		"no oidc":       {ClientID: "c"},
		"nil parts":     {DefaultSession: &openid.DefaultSession{}},
		"ignored parts": {DefaultSession: &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}}, AccessAudience: []string{"a"}, GrantScopes: []string{"s"}},
	}
	for name, s := range sessions {
		want, err := json.Marshal((*sessionFields)(s))
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		// The token store calls MarshalJSON itself (encodeSession), without
		// encoding/json's second pass: its bytes must already be final.
		if direct, err := s.MarshalJSON(); err != nil || string(direct) != string(want) {
			t.Errorf("%s: MarshalJSON %s, %v\nwant %s", name, direct, err, want)
		}
		back := &session{}
		if err := json.Unmarshal(got, back); err != nil {
			t.Fatalf("%s: read back: %v", name, err)
		}
		var again session
		if err := json.Unmarshal(want, &again); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, &again) {
			t.Errorf("%s: read back differs", name)
		}
	}
}

// TestSessionJSONRefusesBadTimes: a time RFC 3339 cannot say is an error,
// as it was.
func TestSessionJSONRefusesBadTimes(t *testing.T) {
	s := newSession()
	s.Claims.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := json.Marshal((*sessionFields)(s)); err == nil {
		t.Fatal("encoding/json took year 10000")
	}
	if _, err := json.Marshal(s); err == nil {
		t.Error("MarshalJSON took year 10000")
	}
}
