package broker

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// FuzzSecondStepForm posts whatever arrives to the second step of a real
// pending login: the code form of a user with an authenticator (enrol
// false) and the enrolment form of accounts.mfa required (enrol true).
// Never a 5xx or a panic, and never a redirect to the client: the fuzzer
// does not know the code. `go test` runs the seeds; `go test -run '^$'
// -fuzz FuzzSecondStepForm -fuzztime 10m ./broker/` explores.
func FuzzSecondStepForm(f *testing.F) {
	for _, seed := range []string{"code=123456", "code=", "code=%00", "code=abcde-fghij", "code=" + strings.Repeat("9", 70),
		"factor=f_x&code=000000", "factor=&code=1", "code=12%2034%2056", "%", "code=%ff%fe", "login=x&code=1"} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	type target struct {
		h       http.Handler
		login   string
		cookies []*http.Cookie
	}
	setup := func(policy string, enrolled bool) target {
		e, svc, clk := newMFAEnv(f, storagetest.Backend{Name: "sqlite"}, policy)
		if enrolled {
			enrolAlice(f, e, svc, clk)
		}
		br := e.browser()
		p := br.passwordStep(spaAuth())
		u, _ := url.Parse(e.issuer)
		return target{h: e.srv.Handler(), login: loginID(f, p), cookies: br.c.Jar.Cookies(u)}
	}
	codeForm, enrolForm := setup(MFAOptional, true), setup(MFARequired, false)
	f.Fuzz(func(t *testing.T, body string, enrol bool) {
		tg := codeForm
		if enrol {
			tg = enrolForm
		}
		req := httptest.NewRequest(http.MethodPost, pathSecondStep, strings.NewReader("login="+url.QueryEscape(tg.login)+"&"+body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		for _, c := range tg.cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		tg.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
		if loc := rec.Header().Get("Location"); strings.HasPrefix(loc, spaRedirect) {
			t.Fatalf("%q: a code without the second factor: %s", body, loc)
		}
	})
}
