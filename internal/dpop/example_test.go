package dpop_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
)

// A resource server checks a DPoP-bound access token: the proof in the DPoP
// header must be for this request, carry the token's hash and be signed by
// the key the token's cnf.jkt names.
func Example() {
	client, _ := dpop.GenerateSigner() // the client's key pair
	const token = "the access token"   // its cnf.jkt is client.JKT()
	proof, _ := client.Proof("GET", "https://api.example/orders?page=2", dpop.ProofOptions{AccessToken: token})

	req := httptest.NewRequest("GET", "https://api.example/orders?page=2", nil)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set(dpop.HeaderName, proof)

	v := &dpop.Verifier{Replay: dpop.NewMemoryReplayCache(10_000)}
	check := func(r *http.Request) error {
		raw, err := dpop.FromHeader(r.Header)
		if err != nil {
			return err
		}
		_, err = v.Verify(context.Background(), raw, dpop.Request{
			Method:      r.Method,
			URL:         "https://api.example" + r.URL.RequestURI(),
			AccessToken: token,
			JKT:         client.JKT(),
		})
		return err
	}
	fmt.Println("first use:", check(req))
	err := check(req)
	fmt.Println("replayed:", dpop.Code(err), err)
	// Output:
	// first use: <nil>
	// replayed: invalid_dpop_proof invalid_dpop_proof: DPoP proof jti already used
}
