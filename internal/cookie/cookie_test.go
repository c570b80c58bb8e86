package cookie

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		issuer, path, wantName, wantPath string
		secure                           bool
	}{
		{"https://id.example/auth", "/auth", "__Host-bk", "/", true},
		{"https://id.example", "", "__Host-bk", "/", true},
		{"http://127.0.0.1:8080/auth", "/auth", "bk", "/auth", false},
		{"http://127.0.0.1:8080", "", "bk", "/", false},
	} {
		p := For(tc.issuer)
		rec := httptest.NewRecorder()
		p.Set(rec, &http.Cookie{Name: "bk", Value: "v", Path: tc.path, Domain: "id.example"})
		cs := rec.Result().Cookies()
		if len(cs) != 1 {
			t.Fatalf("%s: %d cookies", tc.issuer, len(cs))
		}
		c := cs[0]
		if c.Name != tc.wantName || c.Path != tc.wantPath || c.Secure != tc.secure || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("%s: %+v", tc.issuer, c)
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(&http.Cookie{Name: "bk", Value: "plain"})
		req.AddCookie(&http.Cookie{Name: "__Host-bk", Value: "host"})
		got, err := p.Get(req, "bk")
		if want := map[bool]string{true: "host", false: "plain"}[tc.secure]; err != nil || got.Value != want {
			t.Errorf("%s: Get = %v %v, want %s", tc.issuer, got, err, want)
		}
	}
}
