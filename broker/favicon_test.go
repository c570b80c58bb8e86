package broker

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestFavicon: the broker answers a browser's /favicon.ico with its icon,
// cacheable, instead of the "Page not found" page (a 404 on every page
// view of the login and account pages).
func TestFavicon(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, err := http.NewRequest(method, e.issuer+"/favicon.ico", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s /favicon.ico: %d", method, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "image/x-icon" {
			t.Errorf("%s /favicon.ico: Content-Type %q", method, ct)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
			t.Errorf("%s /favicon.ico: Cache-Control %q, want a max-age", method, cc)
		}
		if method == http.MethodGet && (!bytes.HasPrefix(body, []byte{0, 0, 1, 0}) || len(body) > 4096) {
			t.Errorf("GET /favicon.ico: %d bytes, not a small ICO file", len(body))
		}
	}
	res, err := http.Post(e.issuer+"/favicon.ico", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Error("POST /favicon.ico answered 200")
	}
}
