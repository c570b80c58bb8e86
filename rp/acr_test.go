package rp_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/rp/rptest"
)

// RequireACR and RequireAMR let the stronger token through and refuse the
// weaker one with RFC 9470's insufficient_user_authentication, naming the
// acr_values to ask for.
func TestRequireACRAndAMR(t *testing.T) {
	iss := rptest.NewIssuer(t)
	v, err := rp.NewVerifier(t.Context(), iss.URL, rp.WithAudience("api"), rp.WithHTTPClient(iss.Client()))
	if err != nil {
		t.Fatal(err)
	}
	const mfaACR = "urn:bridgekeeper:acr:mfa"
	mux := http.NewServeMux()
	mux.Handle("/acr", v.Middleware(rp.RequireACR(mfaACR)(claimsHandler(t))))
	mux.Handle("/amr", v.Middleware(rp.RequireAMR("otp", "mfa")(claimsHandler(t))))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	token := func(acr string, amr ...string) string {
		now := time.Now()
		c := rptest.Claims{"iss": iss.URL, "sub": "u1", "aud": "api", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		if acr != "" {
			c["acr"] = acr
		}
		if amr != nil {
			c["amr"] = amr
		}
		return "Bearer " + iss.Sign(c)
	}
	strong := token(mfaACR, "pwd", "otp", "mfa")
	for _, tc := range []struct {
		name, path, auth string
		status           int
	}{
		{"mfa token, acr", "/acr", strong, 200},
		{"mfa token, amr", "/amr", strong, 200},
		{"password token, acr", "/acr", token("urn:bridgekeeper:acr:pwd", "pwd"), 401},
		{"password token, amr", "/amr", token("urn:bridgekeeper:acr:pwd", "pwd"), 401},
		{"no acr", "/acr", token(""), 401},
		{"otp without mfa", "/amr", token(mfaACR, "otp"), 401},
	} {
		a := call(t, srv.URL+tc.path, tc.auth)
		if a.status != tc.status {
			t.Errorf("%s: %d, want %d (%s)", tc.name, a.status, tc.status, a.wwwAuth)
			continue
		}
		if tc.status == 401 {
			if a.body.Error != rp.ErrorInsufficientUserAuthentication || !strings.Contains(a.wwwAuth, `error="insufficient_user_authentication"`) {
				t.Errorf("%s: %q %q", tc.name, a.body.Error, a.wwwAuth)
			}
			if tc.path == "/acr" && !strings.Contains(a.wwwAuth, `acr_values="`+mfaACR+`"`) {
				t.Errorf("%s: no acr_values in %q", tc.name, a.wwwAuth)
			}
		}
	}
}
