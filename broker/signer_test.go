package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestAppendJSONMatchesEncodingJSON: the signer's JSON is encoding/json's,
// byte for byte, for the kinds it writes itself and the ones it hands on.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, "", "plain", `quo"te`, `back\slash`, "<script>&", "tab\tnew\nline", "\x00\x1f", "Zoë", "\u2028", "bad\xffutf8",
		true, false, int64(0), int64(-42), int64(math.MaxInt64), 7, 0.0, math.Copysign(0, -1), 1.5, -2.25, 1e20, 1e21, 1e-7,
		float64(1765000000), float64(1 << 53), float64(1<<53 + 2), 123456789.000001,
		[]string(nil), []string{}, []string{"a", "<b>"}, []any(nil), []any{}, []any{"a", 1.0, true, nil, []any{"x"}},
		map[string]any(nil), map[string]any{}, map[string]any{"b": 1.0, "a": "x", "<": "&", "é": []string{"z"}},
		map[string]any{"cnf": map[string]any{"jkt": "abc"}, "amr": []string{"pwd", "otp"}, "exp": int64(1765000000)},
		map[string]string{"k": "v"}, time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC), json.Number("12.50"), int32(5), []int{1, 2},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON([]byte("prefix"), v)
		if err != nil {
			t.Errorf("%#v: %v", v, err)
			continue
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("%#v:\n got %s\nwant %s", v, got[len("prefix"):], want)
		}
	}
	if _, err := appendJSON(nil, map[string]any{"x": math.NaN()}); err == nil {
		t.Error("NaN marshalled")
	}
	many := map[string]any{}
	for i := range 40 {
		many[strings.Repeat("k", i+1)] = i
	}
	want, _ := json.Marshal(many)
	if got, _ := appendJSON(nil, many); string(got) != string(want) {
		t.Errorf("40 claims:\n got %s\nwant %s", got, want)
	}
}

// TestSignerAsDefaultSigner signs the same claims with the broker's signer
// and with fosite's DefaultSigner (go-jose), for both algorithms: the
// headers and the claims read the same, and the broker's token verifies
// with go-jose v4 against the published key and with the broker's own
// Decode.
func TestSignerAsDefaultSigner(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{keys.RS256, keys.ES256} {
		t.Run(alg, func(t *testing.T) {
			store, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(t)
			km, err := keys.New(ctx, store, keys.Options{Algorithm: alg, EncryptionKey: make([]byte, 32)})
			if err != nil {
				t.Fatal(err)
			}
			signer := newKidSigner(km)
			now := time.Now().Truncate(time.Second)
			for _, header := range []*jwt.Headers{{}, {Extra: map[string]any{"typ": "at+jwt"}}, {Extra: map[string]any{"alg": "none", "x": "y"}}, {Extra: map[string]any{"typ": 5}}, {Extra: map[string]any{"alg": "none"}}} {
				claims := (&jwt.IDTokenClaims{
					Subject: "u1", Issuer: "https://issuer.example", Audience: []string{"c1"}, IssuedAt: now,
					ExpiresAt: now.Add(time.Hour), AuthTime: now, RequestedAt: now, Nonce: "n<&>",
					AuthenticationMethodsReferences: []string{"pwd"},
					Extra:                           map[string]any{"email": "a@example.com", "updated_at": float64(now.Unix()), "name": "Zoë", "cnf": map[string]any{"jkt": "k"}},
				}).ToMapClaims()
				ours, sig, err := signer.Generate(ctx, claims, header)
				if err != nil {
					t.Fatal(err)
				}
				theirs, _, err := signer.DefaultSigner.Generate(ctx, claims, header)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(ours, "."+sig) {
					t.Errorf("signature %q is not the token's last part", sig)
				}
				for i, part := range []string{"header", "claims"} {
					if got, want := jsonPart(t, ours, i), jsonPart(t, theirs, i); !reflect.DeepEqual(got, want) {
						t.Errorf("%s differ:\n ours   %v\n fosite %v", part, got, want)
					}
				}
				if h := jsonPart(t, ours, 0); h["alg"] != alg || h["kid"] != km.SigningKey().KeyID {
					t.Errorf("header %v", h)
				}
				if _, err := signer.Decode(ctx, ours); err != nil {
					t.Errorf("Decode: %v", err)
				}
				jws, err := jose.ParseSigned(ours, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatal(err)
				}
				pub, _, _ := km.PublicKey(km.SigningKey().KeyID)
				if _, err := jws.Verify(pub); err != nil {
					t.Errorf("go-jose v4 verify: %v", err)
				}
			}
		})
	}
}

// jsonPart decodes part i (0 header, 1 claims) of a compact JWS, numbers
// as float64 (go-jose may write 1.7e+09 where encoding/json writes the
// integer).
func jsonPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
