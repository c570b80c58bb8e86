package broker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Fuzz targets on what the broker's answers look like, beside
// FuzzTokenRequest and FuzzAuthorizeQuery (which check for 5xx): a token
// error is a standard RFC 6749 §5.2 JSON body that is never cached, and an
// authorization request never redirects anywhere but the broker itself or
// a registered redirect URI.

// tokenErrors are the error codes RFC 6749 §5.2 allows at the token
// endpoint.
var tokenErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
}

func FuzzTokenErrorBody(f *testing.F) {
	for _, seed := range []string{
		"grant_type=client_credentials&scope=read",
		"grant_type=client_credentials&scope=admin",
		"grant_type=authorization_code&code=abc.def&redirect_uri=" + url.QueryEscape(spaRedirect) + "&code_verifier=" + strings.Repeat("v", 43) + "&client_id=spa",
		"grant_type=refresh_token&refresh_token=a.b&client_id=spa",
		"grant_type=password&username=a&password=b",
		"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x",
		"client_id=spa&client_id=web",
		"grant_type=client_credentials&client_secret=x&client_id=api",
		"%zz",
	} {
		for auth := range byte(4) {
			f.Add(seed, auth)
		}
	}
	e := newTestEnv(f, storagetest.Backend{Name: "sqlite"}, nil)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body string, auth byte) {
		req := httptest.NewRequest(http.MethodPost, pathToken, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		switch auth % 4 {
		case 1:
			req.SetBasicAuth(apiID, apiSecret)
		case 2:
			req.SetBasicAuth(webID, webSecret)
		case 3:
			req.SetBasicAuth(apiID, "wrong")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("%q: Cache-Control %q, want no-store", body, cc)
		}
		var answer struct {
			AccessToken string `json:"access_token"`
			Error       string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%q: %d answer is not JSON: %s", body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK {
			if answer.AccessToken == "" {
				t.Fatalf("%q: 200 without an access token: %s", body, rec.Body)
			}
			return
		}
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized {
			t.Fatalf("%q: status %d, want 200, 400 or 401: %s", body, rec.Code, rec.Body)
		}
		if !tokenErrors[answer.Error] {
			t.Fatalf("%q: error %q is not an RFC 6749 §5.2 code: %s", body, answer.Error, rec.Body)
		}
	})
}

func FuzzAuthorizeRedirect(f *testing.F) {
	for _, seed := range []string{
		spaAuth().params.Encode(),
		spaAuth("prompt", "none").params.Encode(),
		spaAuth("redirect_uri", "http://127.0.0.1:1234/callback").params.Encode(),
		spaAuth("redirect_uri", "http://evil.example/callback").params.Encode(),
		spaAuth("redirect_uri", "http://127.0.0.1:9999/callback/../evil").params.Encode(),
		spaAuth("redirect_uri", "http://127.0.0.1:9999@evil.example/callback").params.Encode(),
		spaAuth("redirect_uri", "http://evil@127.0.0.1:9999/callback").params.Encode(),
		spaAuth("redirect_uri", "http://127.0.0.1:9999/%63allback").params.Encode(),
		spaAuth("redirect_uri", "http://127.0.0.1:9999/callback", "prompt", "none").params.Encode(),
		spaAuth("redirect_uri", "http://evil@127.0.0.1:9999/callback", "prompt", "none").params.Encode(),
		spaAuth("response_type", "token").params.Encode(),
		spaAuth("response_mode", "fragment").params.Encode(),
		spaAuth("client_id", webID, "redirect_uri", webRedirect).params.Encode(),
		"client_id=web&response_type=code&redirect_uri=https://web.example/callback&scope=openid&state=" + testState,
		"client_id=spa&redirect_uri=//evil.example",
	} {
		f.Add(seed)
	}
	e := newTestEnv(f, storagetest.Backend{Name: "sqlite"}, nil)
	h := e.srv.Handler()
	issuer, err := url.Parse(e.issuer)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, pathAuth, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", query, rec.Code, rec.Body)
		}
		loc := rec.Header().Get("Location")
		if rec.Code < 300 || rec.Code > 399 || loc == "" {
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("%q: unparsable Location %q", query, loc)
		}
		if !u.IsAbs() && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(u.Path, "//") {
			return // inside the broker
		}
		if u.Scheme == issuer.Scheme && u.Host == issuer.Host {
			return
		}
		if !registeredRedirect(u) {
			t.Fatalf("%q: redirect to unregistered %q", query, loc)
		}
	})
}

// registeredRedirect says whether u goes to a redirect URI registered by
// a test client, compared byte for byte up to the query: the web client's
// exactly, the SPA's (a public client on http://127.0.0.1) with any port
// (RFC 8252 §7.3), no userinfo, no other spelling of the path.
func registeredRedirect(u *url.URL) bool {
	target, _, _ := strings.Cut(u.String(), "?")
	target, _, _ = strings.Cut(target, "#")
	return target == webRedirect || spaRedirectRE.MatchString(target)
}

var spaRedirectRE = regexp.MustCompile(`^http://127\.0\.0\.1(:[1-9][0-9]{0,4})?/callback$`)
