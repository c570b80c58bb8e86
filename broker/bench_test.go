package broker

// Benchmarks of the token endpoint through the real HTTP handler on SQLite,
// next to the raw cost of signing the JWTs each grant issues, so the ratio
// to the signing floor is visible:
//
//	go test -run '^$' -bench . -benchmem ./broker/
//
// Parallel benchmarks run 4 goroutines per CPU (concurrency 8 on 2 cores).

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const benchParallelism = 4

// newBenchEnv is a broker on SQLite signing with RS256, or with the
// algorithm in BENCH_ALGORITHM (ES256 shows the cost of everything but
// the signatures).
func newBenchEnv(b *testing.B) *testEnv {
	b.Helper()
	alg := os.Getenv("BENCH_ALGORITHM")
	if alg == "" {
		alg = "RS256"
	}
	return newTestEnvAlg(b, storagetest.Backend{Name: "sqlite"}, alg, nil)
}

// serve runs one request through the handler (no network) and checks the status.
func serve(b *testing.B, h http.Handler, req *http.Request, want int) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Errorf("%s %s: %d %s", req.Method, req.URL.Path, rec.Code, rec.Body.String())
	}
	return rec
}

// reportRate adds requests per second (all goroutines together) to the
// benchmark's output.
func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func tokenRequest(form url.Values, user, pass string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, pathToken, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return req
}

// codes makes n authorization codes of the SPA client with their requests
// (through one logged-in browser session: no login per code).
func (e *testEnv) codes(n int) ([]string, []authRequest) {
	br := e.browser()
	br.loginForCode(spaAuth())
	codes, reqs := make([]string, n), make([]authRequest, n)
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				reqs[i] = spaAuth()
				codes[i] = redirectParams(e.t, br.get(e.authURL(reqs[i])), spaRedirect).Get("code")
			}
		})
	}
	wg.Wait()
	return codes, reqs
}

func BenchmarkCodeExchange(b *testing.B) {
	e := newBenchEnv(b)
	h := e.srv.Handler()
	codes, reqs := e.codes(b.N)
	var next sync.Mutex
	i := 0
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			next.Lock()
			n := i
			i++
			next.Unlock()
			serve(b, h, tokenRequest(url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {codes[n]},
				"redirect_uri":  {spaRedirect},
				"client_id":     {spaID},
				"code_verifier": {reqs[n].verifier},
			}, "", ""), http.StatusOK)
		}
	})
	reportRate(b)
}

func BenchmarkRefresh(b *testing.B) {
	e := newBenchEnv(b)
	h := e.srv.Handler()
	// One refresh chain per goroutine.
	chains := make(chan string, 64)
	codes, reqs := e.codes(64)
	for i := range codes {
		chains <- mustOK(b, e.exchange(codes[i], reqs[i])).RefreshToken
	}
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rt := <-chains
		for pb.Next() {
			rec := serve(b, h, tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaID}}, "", ""), http.StatusOK)
			body := rec.Body.String()
			i := strings.Index(body, `"refresh_token":"`)
			if i < 0 {
				b.Error("no refresh token")
				return
			}
			rest := body[i+len(`"refresh_token":"`):]
			rt = rest[:strings.IndexByte(rest, '"')]
		}
	})
	reportRate(b)
}

func BenchmarkClientCredentials(b *testing.B) {
	e := newBenchEnv(b)
	h := e.srv.Handler()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serve(b, h, tokenRequest(form, apiID, apiSecret), http.StatusOK)
		}
	})
	reportRate(b)
}

// BenchmarkSign is the floor: signing the JWTs of one token response with
// the same key and similar claims (access token + ID token for the code and
// refresh grants, one access token for client_credentials).
func BenchmarkSign(b *testing.B) {
	e := newBenchEnv(b)
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return e.keys.SigningKey(), nil }}
	now := time.Now()
	at := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": e.issuer, "sub": e.user.ID, "aud": []string{apiID}, "exp": now.Add(15 * time.Minute).Unix(),
			"iat": now.Unix(), "jti": uuid.NewString(), "client_id": spaID, "scope": allUserScopes}
	}
	id := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": e.issuer, "sub": e.user.ID, "aud": []string{spaID}, "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "jti": uuid.NewString(), "auth_time": now.Unix(), "rat": now.Unix(), "nonce": testNonce,
			"at_hash": "abcdefghijklmnopqrstuv", "amr": []string{"pwd"}, "idp": "local", "email": userEmail,
			"email_verified": true, "name": "Alice Liddell"}
	}
	for _, bc := range []struct {
		name string
		ids  int
	}{{"AccessAndIDToken", 1}, {"AccessToken", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, _, err := signer.Generate(ctx, at(), &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}); err != nil {
						b.Error(err)
					}
					for range bc.ids {
						if _, _, err := signer.Generate(ctx, id(), &jwt.Headers{}); err != nil {
							b.Error(err)
						}
					}
				}
			})
			reportRate(b)
		})
	}
}

func BenchmarkJWKS(b *testing.B) {
	benchmarkGet(b, pathJWKS)
}

func BenchmarkDiscovery(b *testing.B) {
	benchmarkGet(b, pathDiscovery)
}

func benchmarkGet(b *testing.B, path string) {
	e := newBenchEnv(b)
	h := e.srv.Handler()
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Origin", spaOrigin)
			serve(b, h, req, http.StatusOK)
		}
	})
	reportRate(b)
}
