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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const benchParallelism = 4

// newBenchEnv is a broker on SQLite signing with RS256, or with the
// algorithm in BENCH_ALGORITHM (ES256 shows the cost of everything but
// the signatures), or on Postgres when BENCH_BACKEND is "postgres" (and
// BRIDGEKEEPER_TEST_POSTGRES names the server): the database's work then
// runs in its own processes, so the broker's CPU time (cpu-cost-x) is its
// own.
func newBenchEnv(b *testing.B) *testEnv {
	b.Helper()
	alg := os.Getenv("BENCH_ALGORITHM")
	if alg == "" {
		alg = "RS256"
	}
	backend := storagetest.Backend{Name: storage.DialectSQLite}
	if os.Getenv("BENCH_BACKEND") == storage.DialectPostgres {
		if os.Getenv(storagetest.PostgresEnv) == "" {
			b.Skipf("BENCH_BACKEND=postgres needs %s", storagetest.PostgresEnv)
		}
		backend.Name = storage.DialectPostgres
	}
	return newTestEnvAlg(b, backend, alg, nil)
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
	chains := e.refreshChains(b, 64)
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := <-chains
		for pb.Next() {
			c.refresh(b)
		}
	})
	reportRate(b)
}

// refreshChain is one grant's latest refresh token, redeemed again and
// again through the handler.
type refreshChain struct {
	h     http.Handler
	token string
}

// refreshChains logs in n times and returns n chains to take from.
func (e *testEnv) refreshChains(b *testing.B, n int) chan *refreshChain {
	chains := make(chan *refreshChain, n)
	codes, reqs := e.codes(n)
	for i := range codes {
		chains <- &refreshChain{h: e.srv.Handler(), token: mustOK(b, e.exchange(codes[i], reqs[i])).RefreshToken}
	}
	return chains
}

func (c *refreshChain) refresh(b *testing.B) { c.refreshReq(b, nil) }

// refreshReq is refresh with the request changed by mod first (nil: as is).
func (c *refreshChain) refreshReq(b *testing.B, mod func(*http.Request)) {
	req := tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {c.token}, "client_id": {spaID}}, "", "")
	if mod != nil {
		mod(req)
	}
	rec := serve(b, c.h, req, http.StatusOK)
	body := rec.Body.String()
	i := strings.Index(body, `"refresh_token":"`)
	if i < 0 {
		b.Error("no refresh token")
		return
	}
	rest := body[i+len(`"refresh_token":"`):]
	c.token = rest[:strings.IndexByte(rest, '"')]
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
	for _, bc := range []struct {
		name string
		ids  int
	}{{"AccessAndIDToken", 1}, {"AccessToken", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.signResponse(b, bc.ids)
				}
			})
			reportRate(b)
		})
	}
}

// signResponse signs what a token response carries: an access token and
// idTokens ID tokens, with the broker's signer and key and claims like the
// broker's.
func (e *testEnv) signResponse(b *testing.B, idTokens int) {
	ctx := context.Background()
	signer := newKidSigner(e.keys) // the grants' signing path, JSON included
	now := time.Now()
	at := jwt.MapClaims{"iss": e.issuer, "sub": e.user.ID, "aud": []string{apiID}, "exp": now.Add(15 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": uuid.NewString(), "client_id": spaID, "scope": allUserScopes}
	if _, _, err := signer.Generate(ctx, at, &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}); err != nil {
		b.Error(err)
	}
	for range idTokens {
		id := jwt.MapClaims{"iss": e.issuer, "sub": e.user.ID, "aud": []string{spaID}, "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "jti": uuid.NewString(), "auth_time": now.Unix(), "rat": now.Unix(), "nonce": testNonce,
			"at_hash": "abcdefghijklmnopqrstuv", "amr": []string{"pwd"}, "idp": "local", "email": userEmail,
			"email_verified": true, "name": "Alice Liddell"}
		if _, _, err := signer.Generate(ctx, id, &jwt.Headers{}); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkRefreshVsFloor compares the refresh grant with its signing
// floor on a machine whose speed drifts (a shared VM's can swing by a
// third within a minute, more than the gap being measured). Eight workers
// run without pause; each iteration has them refresh (as BenchmarkRefresh)
// for 500 ms, then do nothing but sign what a refresh response carries (as
// BenchmarkSign/AccessAndIDToken) for 500 ms, so both see the same
// machine. Each mode is counted in its last 400 ms, when only its own work
// runs. It reports both rates, the grant's rate as a percentage of the
// floor's (target, issue 2: at least 70 %) and its cost as a multiple of
// the signatures' (floor/s ÷ grant/s; target: at most 1.3 when storage is
// not the bottleneck).
func BenchmarkRefreshVsFloor(b *testing.B) {
	e := newBenchEnv(b)
	chains := e.refreshChains(b, 64)
	benchmarkVsFloor(b, e, 1, func() func() {
		c := <-chains
		return func() { c.refresh(b) }
	})
}

// BenchmarkClientCredentialsVsFloor is BenchmarkRefreshVsFloor for the
// client_credentials grant, whose floor is one access token's signature.
func BenchmarkClientCredentialsVsFloor(b *testing.B) {
	e := newBenchEnv(b)
	h := e.srv.Handler()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}
	benchmarkVsFloor(b, e, 0, func() func() {
		return func() { serve(b, h, tokenRequest(form, apiID, apiSecret), http.StatusOK) }
	})
}

// benchmarkVsFloor interleaves a grant (newWorker gives each worker its
// own) with signing what its response carries (an access token and
// idTokens ID tokens); see BenchmarkRefreshVsFloor.
func benchmarkVsFloor(b *testing.B, e *testEnv, idTokens int, newWorker func() func()) {
	benchmarkVsFloorOf(b, func() { e.signResponse(b, idTokens) }, newWorker)
}

// benchmarkVsFloorOf is benchmarkVsFloor with the floor's work given.
func benchmarkVsFloorOf(b *testing.B, floor func(), newWorker func() func()) {
	const (
		grantMode = iota
		signMode
	)
	const settle, window = 100 * time.Millisecond, 400 * time.Millisecond
	var (
		mode, counting atomic.Int32 // counting: the mode being counted, +1; 0 for none
		done           atomic.Bool
		counts         [2]atomic.Int64
		wg             sync.WaitGroup
	)
	for range benchParallelism * runtime.GOMAXPROCS(0) {
		grant := newWorker()
		wg.Go(func() {
			for !done.Load() {
				m := mode.Load()
				if m == grantMode {
					grant()
				} else {
					floor()
				}
				if counting.Load() == m+1 {
					counts[m].Add(1)
				}
			}
		})
	}
	var counted, busy [2]time.Duration
	run := func(m int32) {
		mode.Store(m)
		time.Sleep(settle) // the other mode's last operations finish
		start, cpu := time.Now(), processCPU()
		counting.Store(m + 1)
		time.Sleep(window)
		counting.Store(0)
		counted[m] += time.Since(start)
		busy[m] += processCPU() - cpu
	}
	b.ResetTimer()
	for b.Loop() {
		run(grantMode)
		run(signMode)
	}
	done.Store(true)
	wg.Wait()
	grantRate := float64(counts[grantMode].Load()) / counted[grantMode].Seconds()
	floorRate := float64(counts[signMode].Load()) / counted[signMode].Seconds()
	b.ReportMetric(grantRate, "grant/s")
	b.ReportMetric(floorRate, "floor/s")
	b.ReportMetric(100*grantRate/floorRate, "%-of-floor")
	b.ReportMetric(floorRate/grantRate, "cost-x")
	// The same cost by CPU time: what each grant and each response's
	// signatures burnt, leaving out the time the cores sat idle (waiting
	// for the disk, or taken by the hypervisor).
	cores := float64(runtime.GOMAXPROCS(0))
	b.ReportMetric(100*busy[grantMode].Seconds()/counted[grantMode].Seconds()/cores, "grant-cpu%")
	b.ReportMetric(100*busy[signMode].Seconds()/counted[signMode].Seconds()/cores, "floor-cpu%")
	grantCPU := busy[grantMode].Seconds() / float64(counts[grantMode].Load())
	floorCPU := busy[signMode].Seconds() / float64(counts[signMode].Load())
	b.ReportMetric(grantCPU/floorCPU, "cpu-cost-x")
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
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
