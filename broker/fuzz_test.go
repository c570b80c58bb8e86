package broker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Fuzz targets: whatever arrives, the broker answers without a 5xx or a
// panic. `go test` runs the seeds; `go test -fuzz FuzzTokenRequest ./broker/`
// explores.

func FuzzTokenRequest(f *testing.F) {
	for _, seed := range []string{
		"grant_type=client_credentials&scope=read",
		"grant_type=authorization_code&code=abc.def&redirect_uri=x&code_verifier=" + strings.Repeat("v", 43),
		"grant_type=refresh_token&refresh_token=a.b",
		"grant_type=client_credentials&scope=%ff%fe",
		"",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	e := newTestEnv(f, storagetest.Backend{Name: "sqlite"}, nil)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body string, auth bool) {
		req := httptest.NewRequest(http.MethodPost, pathToken, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			req.SetBasicAuth(apiID, apiSecret)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
	})
}

func FuzzAuthorizeQuery(f *testing.F) {
	for _, seed := range []string{
		spaAuth().params.Encode(),
		spaAuth("prompt", "none").params.Encode(),
		spaAuth("max_age", "99999999999999999999").params.Encode(),
		spaAuth("code_challenge_method", "plain").params.Encode(),
		"client_id=spa&response_type=code%20id_token&redirect_uri=http://127.0.0.1:1/callback",
		"%",
	} {
		f.Add(seed)
	}
	e := newTestEnv(f, storagetest.Backend{Name: "sqlite"}, nil)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, pathAuth, nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", query, rec.Code, rec.Body)
		}
	})
}
