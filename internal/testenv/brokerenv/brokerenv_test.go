package brokerenv_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv/brokerenv"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestStart: the broker answers discovery with its issuer and issues
// a token to a client created with CreateClient, and to no other secret.
func TestStart(t *testing.T) {
	b := brokerenv.Start(t, brokerenv.Options{})
	res, err := http.Get(b.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Issuer string }
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || doc.Issuer != b.Issuer {
		t.Fatalf("discovery: %d, issuer %q, %v", res.StatusCode, doc.Issuer, err)
	}
	b.CreateClient(t, &storage.Client{ID: "svc", Name: "svc", TokenEndpointAuthMethod: "client_secret_basic",
		GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"}, Scopes: []string{"jobs"}},
		"svc-secret-0123456789abcdefghijklmnop")
	token := func(secret string) int {
		req, _ := http.NewRequest(http.MethodPost, b.Issuer+"/oauth2/token",
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"jobs"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := token("svc-secret-0123456789abcdefghijklmnop"); code != http.StatusOK {
		t.Errorf("client_credentials with the secret: %d", code)
	}
	if code := token("svc-secret-0123456789abcdefghijklmnoq"); code != http.StatusUnauthorized {
		t.Errorf("client_credentials with another secret: %d", code)
	}
}
