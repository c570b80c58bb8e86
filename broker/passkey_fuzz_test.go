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

// passkeyFormTarget is a broker with a passkey, one browser's pending
// login, and a well-formed answer to another page's challenge (no input
// derived from it can sign in: that would take forging an ES256
// signature).
type passkeyFormTarget struct {
	t       testing.TB
	h       http.Handler
	issuer  string
	login   string
	used    string // the ceremony of the page first shown
	cookies []*http.Cookie
	seed    string
	auth    *passkeytest.Authenticator
	opts    string
}

func newPasskeyFormTarget(t testing.TB) *passkeyFormTarget {
	e, pk, _ := newPasskeyEnv(t, storagetest.Backend{Name: "sqlite"})
	a, _ := enrolPasskey(t, e, pk, e.user, false)
	br := e.browser()
	p, _ := br.passkeyLogin(spaAuth())
	_, opts := e.browser().passkeyLogin(spaAuth())
	u, _ := url.Parse(e.issuer)
	return &passkeyFormTarget{t: t, h: e.srv.Handler(), issuer: e.issuer, login: loginID(t, p),
		used: passkeyCeremonyRe.FindStringSubmatch(p.body)[1], cookies: br.c.Jar.Cookies(u),
		seed: a.Get(opts, passkeytest.Tamper{}), auth: a, opts: opts}
}

func (f *passkeyFormTarget) do(method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, f.issuer+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range f.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// post sends response to the sign-in form, against a fresh ceremony (a
// new rendering of the login page) or the used one, and fails t unless
// it is refused with a 4xx.
func (f *passkeyFormTarget) post(t testing.TB, response string, fresh bool) {
	ceremony := f.used
	if fresh {
		rec := f.do(http.MethodGet, pathLogin+"?login="+url.QueryEscape(f.login), "")
		m := passkeyCeremonyRe.FindStringSubmatch(rec.Body.String())
		if rec.Code != http.StatusOK || m == nil {
			t.Fatalf("login page: %d", rec.Code)
		}
		ceremony = m[1]
	}
	rec := f.do(http.MethodPost, pathPasskeyLogin, url.Values{"login": {f.login}, "ceremony": {ceremony}, "response": {response}}.Encode())
	if rec.Code >= 500 || rec.Code < 400 {
		t.Fatalf("%.200q: %d, want a 4xx refusal", response, rec.Code)
	}
}

// FuzzPasskeyForms posts arbitrary answers to the passkey sign-in form,
// each against a fresh ceremony of a real login page or a used one: never
// a 5xx, never a sign-in. The seeds run in every go test; the long run is
// make fuzz-passkey.
func FuzzPasskeyForms(f *testing.F) {
	target := newPasskeyFormTarget(f)
	for _, seed := range []string{
		target.seed,
		target.auth.Get(target.opts, passkeytest.Tamper{Truncate: true}),
		target.auth.Get(target.opts, passkeytest.Tamper{RPID: "evil.example"}),
		`{"id":"","rawId":"","type":"public-key","response":{"clientDataJSON":"","authenticatorData":"","signature":""}}`,
		"{", "", "null", `{"response":{"userHandle":"AA"}}`,
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, response string, fresh bool) { target.post(t, response, fresh) })
}

// TestPasskeyMutatedAnswers posts 500 answers with random bytes flipped
// (a fixed seed) to the sign-in form, half against fresh ceremonies: each
// is a 4xx refusal, never a 5xx or a sign-in. It stands beside
// FuzzPasskeyForms, whose instrumented run is slow on the shared machine.
func TestPasskeyMutatedAnswers(t *testing.T) {
	target := newPasskeyFormTarget(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := []byte(target.seed)
		for range 1 + rng.IntN(5) {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		target.post(t, string(b), rng.IntN(2) == 0)
	}
}
