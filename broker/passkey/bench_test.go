package passkey

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// BenchmarkPasskeyAssertion is the broker's own work of a passkey
// sign-in beyond the database reads (the ceremony, the passkey and its
// user, served from memory here): parsing the answer, the library's
// verification (client data, RP ID hash, flags, the ES256 signature),
// the counter check and encoding the updated credential record. Target:
// at most 1 ms (BENCHMARKS.md).
func BenchmarkPasskeyAssertion(b *testing.B) {
	svc, err := New(Config{Store: &storage.Store{}, Issuer: "https://login.example"})
	if err != nil {
		b.Fatal(err)
	}
	u := &storage.User{ID: "u_bench", Email: "bench@example.com"}
	a := passkeytest.New("https://login.example", "login.example")
	creation, rsd, err := svc.wa.BeginRegistration(&user{u: u})
	if err != nil {
		b.Fatal(err)
	}
	opts, _ := json.Marshal(creation)
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(a.Create(string(opts), passkeytest.Tamper{})))
	if err != nil {
		b.Fatal(err)
	}
	cred, err := svc.wa.CreateCredential(&user{u: u}, *rsd, parsed)
	if err != nil {
		b.Fatal(err)
	}
	assertion, sd, err := svc.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		b.Fatal(err)
	}
	aopts, _ := json.Marshal(assertion)
	answer := a.Get(string(aopts), passkeytest.Tamper{})
	factor := &storage.SecondFactor{ID: "f_bench", UserID: u.ID, Kind: storage.FactorPasskey, Confirmed: true}
	load := func(string, string) (*stored, error) {
		c := *cred
		return &stored{factor: factor, user: u, cred: &c}, nil
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		as, err := ParseAssertion(answer)
		if err != nil {
			b.Fatal(err)
		}
		_, got, err := svc.verify(ctx, sd, as, load)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(got); err != nil {
			b.Fatal(err)
		}
	}
}
