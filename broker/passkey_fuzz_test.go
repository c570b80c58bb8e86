package broker

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// FuzzPasskeyForms posts arbitrary answers to the passkey sign-in form,
// each against a fresh ceremony of a real login page (fresh) or a used
// one: never a 5xx, never a sign-in. The seeds run in every go test; the
// long run is make fuzz-passkey.
func FuzzPasskeyForms(f *testing.F) {
	e, pk, _ := newPasskeyEnv(f, storagetest.Backend{Name: "sqlite"})
	a, _ := enrolPasskey(f, e, pk, e.user, false)
	br := e.browser()
	p, _ := br.passkeyLogin(spaAuth())
	// Well-formed answers, but to another page's challenge: no input can
	// sign in (that would take forging an ES256 signature).
	_, opts := e.browser().passkeyLogin(spaAuth())
	for _, seed := range []string{
		a.Get(opts, passkeytest.Tamper{}),
		a.Get(opts, passkeytest.Tamper{Truncate: true}),
		a.Get(opts, passkeytest.Tamper{RPID: "evil.example"}),
		`{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"","authenticatorData":"","signature":""}}`,
		"{", "", "null", `{"response":{"userHandle":"AA"}}`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	h := e.srv.Handler()
	login := loginID(f, p)
	u, _ := url.Parse(e.issuer)
	cookies := br.c.Jar.Cookies(u)
	f.Fuzz(func(t *testing.T, response string, fresh bool) {
		ceremony := passkeyCeremonyRe.FindStringSubmatch(p.body)[1]
		if fresh {
			req := httptest.NewRequest(http.MethodGet, e.issuer+pathLogin+"?login="+url.QueryEscape(login), nil)
			for _, c := range cookies {
				req.AddCookie(c)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			m := passkeyCeremonyRe.FindStringSubmatch(rec.Body.String())
			if rec.Code != http.StatusOK || m == nil {
				t.Fatalf("login page: %d", rec.Code)
			}
			ceremony = m[1]
		}
		form := url.Values{"login": {login}, "ceremony": {ceremony}, "response": {response}}
		req := httptest.NewRequest(http.MethodPost, e.issuer+pathPasskeyLogin, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 400 {
			t.Fatalf("%.200q: %d, want a 4xx refusal", response, rec.Code)
		}
	})
}

// TestPasskeyMutatedAnswers posts 500 answers with random bytes flipped
// (a fixed seed) to the sign-in form, half against fresh ceremonies: each
// is a 4xx refusal, never a 5xx or a sign-in. It stands beside
// FuzzPasskeyForms, whose instrumented run is slow on the shared machine.
func TestPasskeyMutatedAnswers(t *testing.T) {
	e, pk, _ := newPasskeyEnv(t, storagetest.Backend{Name: "sqlite"})
	a, _ := enrolPasskey(t, e, pk, e.user, false)
	br := e.browser()
	p, _ := br.passkeyLogin(spaAuth())
	_, opts := e.browser().passkeyLogin(spaAuth())
	seed := a.Get(opts, passkeytest.Tamper{})
	h := e.srv.Handler()
	login := loginID(t, p)
	u, _ := url.Parse(e.issuer)
	cookies := br.c.Jar.Cookies(u)
	rng := rand.New(rand.NewPCG(1, 2))
	post := func(path, body string) *httptest.ResponseRecorder {
		method := http.MethodPost
		if body == "" {
			method = http.MethodGet
		}
		req := httptest.NewRequest(method, e.issuer+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for range 500 {
		b := []byte(seed)
		for range 1 + rng.IntN(5) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		ceremony := passkeyCeremonyRe.FindStringSubmatch(p.body)[1]
		if rng.IntN(2) == 0 {
			rec := post(pathLogin+"?login="+url.QueryEscape(login), "")
			m := passkeyCeremonyRe.FindStringSubmatch(rec.Body.String())
			if rec.Code != http.StatusOK || m == nil {
				t.Fatalf("login page: %d", rec.Code)
			}
			ceremony = m[1]
		}
		rec := post(pathPasskeyLogin, url.Values{"login": {login}, "ceremony": {ceremony}, "response": {string(b)}}.Encode())
		if rec.Code >= 500 || rec.Code < 400 {
			t.Fatalf("%.200q: %d, want a 4xx refusal", b, rec.Code)
		}
	}
}
