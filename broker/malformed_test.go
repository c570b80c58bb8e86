package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestMalformedRequests throws garbage at every endpoint: never a 5xx.
func TestMalformedRequests(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	long := strings.Repeat("A", 5000)
	cases := []struct{ method, path, body, ctype string }{
		{"GET", pathAuth, "", ""},
		{"GET", pathAuth + "?%zz", "", ""},
		{"GET", pathAuth + "?client_id=" + spaID + "&response_type=code&redirect_uri=" + url.QueryEscape(spaRedirect) + "&max_age=-1&state=" + testState, "", ""},
		{"GET", pathAuth + "?client_id=" + spaID + "&response_type=code&redirect_uri=%00&state=" + testState, "", ""},
		{"GET", pathAuth + "?client_id=" + long, "", ""},
		{"POST", pathAuth, "%%%", "application/x-www-form-urlencoded"},
		{"POST", pathToken, "", ""},
		{"POST", pathToken, "grant_type=authorization_code", "application/x-www-form-urlencoded"},
		{"POST", pathToken, "--x\r\n", "multipart/form-data; boundary=x"},
		{"POST", pathToken, "grant_type=refresh_token&refresh_token=a.b.c&client_id=" + spaID, "application/x-www-form-urlencoded"},
		{"POST", pathToken, `{"grant_type":"client_credentials"}`, "application/json"},
		{"POST", pathRevoke, "token=" + long, "application/x-www-form-urlencoded"},
		{"POST", pathToken, "grant_type=client_credentials&x=" + strings.Repeat("y", 100<<10), "application/x-www-form-urlencoded"},
		{"POST", pathIntrospect, "token=" + strings.Repeat("y", 100<<10), "application/x-www-form-urlencoded"},
		{"POST", pathIntrospect, "token=x", "application/x-www-form-urlencoded"},
		{"POST", pathIntrospect, "%%%", "application/x-www-form-urlencoded"},
		{"GET", pathUserinfo, "", ""},
		{"POST", pathUserinfo, "access_token=a.b.c", "application/x-www-form-urlencoded"},
		{"GET", pathLogout + "?id_token_hint=a.b.c", "", ""},
		{"GET", pathLogout + "?id_token_hint=" + long, "", ""},
		{"GET", pathLogout + "?post_logout_redirect_uri=" + url.QueryEscape(spaLogout), "", ""},
		{"GET", pathLogout + "?client_id=nobody&post_logout_redirect_uri=" + url.QueryEscape(spaLogout), "", ""},
		{"POST", pathLogout, "%%%", "application/x-www-form-urlencoded"},
		{"GET", pathLogin, "", ""},
		{"GET", pathLogin + "?login=" + long, "", ""},
		{"POST", pathLogin, "login=x&email=a&password=b", "application/x-www-form-urlencoded"},
		{"POST", pathLogin, strings.Repeat("x=y&", 40000), "application/x-www-form-urlencoded"},
		{"GET", "/nowhere", "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, e.issuer+c.path, strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no redirects
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %.80s: %d", c.method, c.path, resp.StatusCode)
		}
	}
}
