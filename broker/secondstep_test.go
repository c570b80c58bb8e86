package broker

import (
	"bytes"
	"context"
	"encoding/base32"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/rp"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// newMFAEnv is a test broker whose local users have second factors under
// policy, read on the clock clk (the TOTP steps).
func newMFAEnv(t testing.TB, b storagetest.Backend, policy string, more ...func(*Config, *limitClock)) (*testEnv, *mfa.Service, *limitClock) {
	t.Helper()
	clk := &limitClock{now: time.Now()}
	var svc *mfa.Service
	e := newTestEnv(t, b, func(c *Config) {
		var err error
		if svc, err = mfa.New(mfa.Config{Store: c.Store.(mfa.Store), Secret: c.Secret, Issuer: "Test", Now: clk.Now}); err != nil {
			t.Fatal(err)
		}
		c.Factors, c.MFA = svc, policy
		for _, f := range more {
			f(c, clk)
		}
	})
	return e, svc, clk
}

// withLoginLimits gives the broker the account pages' login limits
// (counted in the database), on clk's time.
func withLoginLimits(c *Config, clk *limitClock) {
	c.LoginLimiter = accounts.NewLimiter(c.Store.(accounts.LimiterStore), accounts.Limits{}, clk.Now, nil)
}

// code is the TOTP code of secret at clk's time plus steps steps.
func code(t testing.TB, secret string, clk *limitClock, steps int) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, clk.Now().Add(time.Duration(steps)*30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	secretRe   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	factorRe   = regexp.MustCompile(`name="factor" value="([^"]+)"`)
	recoveryRe = regexp.MustCompile(`<code>([a-z0-9]{5}-[a-z0-9]{5})</code>`)
)

// enrolAlice gives alice a confirmed authenticator through the service and
// returns its secret and recovery codes.
func enrolAlice(t testing.TB, e *testEnv, svc *mfa.Service, clk *limitClock) (string, []string) {
	t.Helper()
	en, err := svc.StartTOTP(context.Background(), e.user)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := svc.ConfirmTOTP(context.Background(), e.user, en.FactorID, code(t, en.Secret, clk, 0))
	if err != nil || len(codes) != 10 {
		t.Fatalf("confirm: %v, %d codes", err, len(codes))
	}
	clk.Advance(30 * time.Second) // the confirming code's step is used up
	return en.Secret, codes
}

// passwordStep runs an authorization request to the second step's page.
func (b *browser) passwordStep(ar authRequest) page {
	b.e.t.Helper()
	p := b.submitLogin(b.get(b.e.authURL(ar)), userEmail, userPassword)
	if p.status != http.StatusOK || !strings.Contains(p.url.Path, pathSecondStep) {
		b.e.t.Fatalf("want the second step, got %d at %s: %.300s", p.status, p.url, p.body)
	}
	return p
}

func (b *browser) submitCode(p page, c string) page {
	return b.postForm(b.e.issuer+pathSecondStep, url.Values{"login": {loginID(b.e.t, p)}, "code": {c}})
}

// idClaims exchanges the code of redirect p and returns the ID token's claims.
func (e *testEnv) idClaims(p page, ar authRequest) map[string]any {
	e.t.Helper()
	_, claims := e.tokens(p, ar)
	return claims
}

// tokens exchanges the code of redirect p: the access token and the ID
// token's claims.
func (e *testEnv) tokens(p page, ar authRequest) (string, map[string]any) {
	e.t.Helper()
	q := redirectParams(e.t, p, spaRedirect)
	tr := mustOK(e.t, e.exchange(q.Get("code"), ar))
	_, claims := e.verifyJWT(tr.IDToken)
	return tr.AccessToken, claims
}

// mfaAPI is an API behind rp's Verifier and RequireACR(mfa) that trusts
// the test broker's keys.
func (e *testEnv) mfaAPI() string {
	e.t.Helper()
	v, err := rp.NewVerifier(context.Background(), e.issuer, rp.WithAudience(apiID))
	if err != nil {
		e.t.Fatal(err)
	}
	api := httptest.NewServer(v.Middleware(rp.RequireACR(mfa.ACRMFA)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	}))))
	e.t.Cleanup(api.Close)
	return api.URL
}

func callAPI(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func amrOf(c map[string]any) []string {
	var out []string
	list, _ := c["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// A user enrols during sign-in (accounts.mfa: required) from the secret
// the page shows, signs in with a code computed from it, and each code
// works once: the same code again, and a code three steps away, are
// refused; a recovery code works once.
func TestTOTPSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, _, clk := newMFAEnv(t, b, MFARequired)

		br := e.browser()
		ar := spaAuth()
		p := br.passwordStep(ar)
		m := secretRe.FindStringSubmatch(p.body)
		f := factorRe.FindStringSubmatch(p.body)
		if m == nil || f == nil || !strings.Contains(p.body, `src="data:image/png;base64,`) {
			t.Fatalf("enrolment page without secret, factor or QR code: %.600s", p.body)
		}
		sec := m[1]
		wrong := br.postForm(e.issuer+pathSecondStep, url.Values{"login": {loginID(t, p)}, "factor": {f[1]}, "code": {"000000"}})
		if wrong.status != http.StatusUnauthorized || secretRe.FindStringSubmatch(wrong.body)[1] != sec {
			t.Fatalf("wrong first code: %d, want 401 with the same key shown again", wrong.status)
		}
		done := br.postForm(e.issuer+pathSecondStep, url.Values{"login": {loginID(t, p)}, "factor": {f[1]}, "code": {code(t, sec, clk, 0)}})
		codes := recoveryRe.FindAllStringSubmatch(done.body, -1)
		if done.status != http.StatusOK || len(codes) != 10 {
			t.Fatalf("confirm: %d, %d recovery codes: %.400s", done.status, len(codes), done.body)
		}
		claims := e.idClaims(br.postForm(e.issuer+pathSecondStep, url.Values{"login": {loginID(t, done)}}), ar)
		if got := amrOf(claims); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) || claims["acr"] != mfa.ACRMFA {
			t.Fatalf("after enrolment: amr %v acr %v", got, claims["acr"])
		}

		// A new browser: password, then a code of the next step.
		clk.Advance(30 * time.Second)
		br2 := e.browser()
		ar2 := spaAuth()
		p2 := br2.passwordStep(ar2)
		if r := br2.submitCode(p2, code(t, sec, clk, 3)); r.status != http.StatusUnauthorized {
			t.Fatalf("code three steps ahead: %d, want 401", r.status)
		}
		if r := br2.submitCode(p2, code(t, sec, clk, -3)); r.status != http.StatusUnauthorized {
			t.Fatalf("code three steps behind: %d, want 401", r.status)
		}
		c := code(t, sec, clk, 0)
		claims = e.idClaims(br2.submitCode(p2, c), ar2)
		if got := amrOf(claims); !slices.Equal(got, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("amr %v", got)
		}
		// The same code, in another browser within its step: refused.
		br3 := e.browser()
		ar3 := spaAuth()
		p3 := br3.passwordStep(ar3)
		if r := br3.submitCode(p3, c); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "used already") {
			t.Fatalf("the same code again: %d, want 401", r.status)
		}
		// An earlier step's code than the one used is refused too.
		if r := br3.submitCode(p3, code(t, sec, clk, -1)); r.status != http.StatusUnauthorized {
			t.Fatalf("an older code: %d, want 401", r.status)
		}
		// A recovery code works once.
		rc := codes[3][1]
		e.idClaims(br3.submitCode(p3, strings.ToUpper(rc)), ar3)
		br4 := e.browser()
		p4 := br4.passwordStep(spaAuth())
		if r := br4.submitCode(p4, rc); r.status != http.StatusUnauthorized {
			t.Fatalf("a used recovery code: %d, want 401", r.status)
		}
	})
}

// Wrong codes count against the login limits of the password: after
// enough of them the second step answers 429 with Retry-After, even for
// the right code.
func TestTOTPRateLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, svc, clk := newMFAEnv(t, b, MFAOptional, withLoginLimits)
		sec, _ := enrolAlice(t, e, svc, clk)
		br := e.browser()
		p := br.passwordStep(spaAuth())
		var r page
		for i := range 40 {
			r = br.submitCode(p, strconv.Itoa(100000+i))
			if r.status == http.StatusTooManyRequests {
				break
			}
			if r.status != http.StatusUnauthorized {
				t.Fatalf("wrong code %d: %d", i, r.status)
			}
		}
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("after many wrong codes: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
		if r := br.submitCode(p, code(t, sec, clk, 0)); r.status != http.StatusTooManyRequests {
			t.Fatalf("the right code while limited: %d, want 429", r.status)
		}
	})
}

// A session that signed in with a password only is asked for the second
// factor when a request asks for acr urn:bridgekeeper:acr:mfa, and comes
// back with otp in amr; without acr_values the session is reused as it is;
// prompt=none cannot step up.
func TestStepUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, svc, clk := newMFAEnv(t, b, MFAOptional)
		api := e.mfaAPI()
		br := e.browser()
		ar := spaAuth()
		weak, claims := e.tokens(br.submitLogin(br.get(e.authURL(ar)), userEmail, userPassword), ar)
		if got := amrOf(claims); !slices.Equal(got, []string{"pwd"}) || claims["acr"] != mfa.ACRPassword {
			t.Fatalf("password only: amr %v acr %v", got, claims["acr"])
		}
		// rp.RequireACR refuses the weaker token, asking for the step-up.
		if st, h := callAPI(t, api, weak); st != http.StatusUnauthorized || !strings.Contains(h, `acr_values="`+mfa.ACRMFA+`"`) {
			t.Fatalf("password-only access token at an MFA API: %d %q", st, h)
		}
		sec, _ := enrolAlice(t, e, svc, clk)

		plain := spaAuth()
		if c := e.idClaims(br.get(e.authURL(plain)), plain); c["acr"] != mfa.ACRPassword {
			t.Fatalf("reuse without acr_values: acr %v", c["acr"])
		}
		none := spaAuth("acr_values", mfa.ACRMFA, "prompt", "none")
		if q := redirectParams(t, br.get(e.authURL(none)), spaRedirect); q.Get("error") != "interaction_required" {
			t.Fatalf("prompt=none step-up: %v", q)
		}
		up := spaAuth("acr_values", mfa.ACRMFA)
		p := br.get(e.authURL(up))
		if p.status != http.StatusOK || p.url.Path != pathSecondStep || !strings.Contains(p.body, `name="code"`) {
			t.Fatalf("step-up: %d at %s, want the code page", p.status, p.url)
		}
		strong, claims := e.tokens(br.submitCode(p, code(t, sec, clk, 0)), up)
		if got := amrOf(claims); !slices.Contains(got, "otp") || claims["acr"] != mfa.ACRMFA {
			t.Fatalf("after step-up: amr %v acr %v", got, claims["acr"])
		}
		if st, h := callAPI(t, api, strong); st != http.StatusOK {
			t.Fatalf("stepped-up access token at an MFA API: %d %q", st, h)
		}
		// The stronger session now answers such a request at once.
		again := spaAuth("acr_values", mfa.ACRMFA)
		if c := e.idClaims(br.get(e.authURL(again)), again); c["acr"] != mfa.ACRMFA {
			t.Fatalf("stronger session reused: acr %v", c["acr"])
		}
	})
}

// The second step cannot be skipped or borrowed: posting the step's form
// without a code, asking the authorization endpoint again, or another
// browser using the pending login gets no code; the second step without a
// password step first sends back to the password.
func TestSecondStepAbuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, svc, clk := newMFAEnv(t, b, MFAOptional)
		sec, _ := enrolAlice(t, e, svc, clk)
		br := e.browser()
		ar := spaAuth()
		p := br.passwordStep(ar)
		id := loginID(t, p)

		// The "continue" form of an enrolment, without a code.
		if r := br.postForm(e.issuer+pathSecondStep, url.Values{"login": {id}}); r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
			t.Fatalf("second step without a code: %d %s", r.status, r.header.Get("Location"))
		}
		// No broker session was started by the password alone.
		if r := br.get(e.authURL(spaAuth("prompt", "none"))); !strings.Contains(r.header.Get("Location"), "error=login_required") {
			t.Fatalf("prompt=none after the password step only: %d %s", r.status, r.header.Get("Location"))
		}
		// Another browser (the attacker's) with the victim's login id and
		// a valid code: the pending login is not theirs.
		other := e.browser()
		other.get(e.authURL(spaAuth())) // has a browser binding of its own
		if r := other.postForm(e.issuer+pathSecondStep, url.Values{"login": {id}, "code": {code(t, sec, clk, 0)}}); r.status != http.StatusBadRequest || !strings.Contains(r.body, "expired") {
			t.Fatalf("another browser's second step: %d: %.200s", r.status, r.body)
		}
		// The attacker's own pending login without a password step.
		op := other.get(e.authURL(spaAuth()))
		r := other.postForm(e.issuer+pathSecondStep, url.Values{"login": {loginID(t, op)}, "code": {code(t, sec, clk, 1)}})
		if r.url.Path != pathLogin || r.header.Get("Location") != "" {
			t.Fatalf("second step without a password step: %d at %s", r.status, r.url)
		}
		// The owner still finishes with the code.
		if c := e.idClaims(br.submitCode(p, code(t, sec, clk, 0)), ar); c["acr"] != mfa.ACRMFA {
			t.Fatalf("owner: acr %v", c["acr"])
		}
	})
}

// A client registered with RequireMFA gets a second factor even when the
// request does not ask: a user with a factor is asked for it, one without
// must enrol.
func TestClientRequiresMFA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, _, _ := newMFAEnv(t, b, MFAOptional)
		c, err := e.store.LookupClient(context.Background(), spaID)
		if err != nil {
			t.Fatal(err)
		}
		c.RequireMFA = true
		if err := e.store.UpdateClient(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		br := e.browser()
		p := br.passwordStep(spaAuth())
		if !strings.Contains(p.body, `id="totp-secret"`) {
			t.Fatalf("a client that requires MFA, user without a factor: want enrolment: %.300s", p.body)
		}
	})
}

// Someone who knows the password cannot reset the count of wrong codes by
// entering the password again: the password step does not clear the login
// limits when a second step follows, so password-then-wrong-code rounds
// end in 429.
func TestPasswordDoesNotResetCodeLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, svc, clk := newMFAEnv(t, b, MFAOptional, withLoginLimits)
		enrolAlice(t, e, svc, clk)
		for i := range 40 {
			br := e.browser()
			p := br.submitLogin(br.get(e.authURL(spaAuth())), userEmail, userPassword)
			if p.status == http.StatusTooManyRequests {
				return
			}
			if p.url.Path != pathSecondStep {
				t.Fatalf("round %d: password step %d at %s", i, p.status, p.url)
			}
			if r := br.submitCode(p, strconv.Itoa(200000+i)); r.status == http.StatusTooManyRequests {
				return
			}
			clk.Advance(2 * time.Second) // within the account's delays, not past the window
		}
		t.Fatal("40 rounds of password and a wrong code were never limited")
	})
}

// One code, sent at once from two browsers that both passed the password
// step: exactly one signs in (the counter moves in one statement).
func TestSameCodeRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, svc, clk := newMFAEnv(t, b, MFAOptional)
		sec, _ := enrolAlice(t, e, svc, clk)
		c := code(t, sec, clk, 0)
		const n = 4
		browsers, pages := make([]*browser, n), make([]page, n)
		for i := range n {
			browsers[i] = e.browser()
			pages[i] = browsers[i].passwordStep(spaAuth())
		}
		results := make(chan int, n)
		for i := range n {
			go func() {
				resp, err := browsers[i].c.PostForm(e.issuer+pathSecondStep, url.Values{"login": {loginID(t, pages[i])}, "code": {c}})
				if err != nil {
					results <- 0
					return
				}
				resp.Body.Close()
				results <- resp.StatusCode
			}()
		}
		signedIn := 0
		for range n {
			switch st := <-results; st {
			case http.StatusSeeOther, http.StatusFound:
				signedIn++
			case http.StatusUnauthorized:
			default:
				t.Errorf("status %d", st)
			}
		}
		if signedIn != 1 {
			t.Fatalf("%d browsers signed in with one code, want 1", signedIn)
		}
	})
}

// Discovery lists the acr values; the ID token's acr is one of them.
func TestACRValuesSupported(t *testing.T) {
	e, _, _ := newMFAEnv(t, storagetest.Backend{Name: "sqlite"}, MFAOptional)
	p := e.browser().get(e.issuer + pathDiscovery)
	for _, v := range mfa.Supported {
		if !strings.Contains(p.body, `"`+v+`"`) || !strings.Contains(p.body, `"acr_values_supported"`) {
			t.Fatalf("discovery lacks acr %s: %s", v, p.body)
		}
	}
}

// A login through a connector is not asked for a second factor, even
// under accounts.mfa required or with acr_values: its acr says what it is
// (pwd level), and an API that needs more refuses its token.
func TestFederatedLoginUnaffected(t *testing.T) {
	var e *testEnv
	e, _, _ = newMFAEnv(t, storagetest.Backend{Name: "sqlite"}, MFARequired, func(c *Config, _ *limitClock) {
		c.LoginOptions = []LoginOption{{ID: "fake", Label: "Fake IdP", URL: func(id string) string {
			return c.Issuer + "/connector/fake?login=" + url.QueryEscape(id)
		}}}
		mount("/connector/fake", func(w http.ResponseWriter, r *http.Request) {
			e.srv.CompleteLogin(w, r, r.URL.Query().Get("login"), e.user.ID, "fake", []string{"fed"})
		})(c)
	})
	br := e.browser()
	ar := spaAuth("idp_hint", "fake", "acr_values", mfa.ACRMFA)
	claims := e.idClaims(br.get(e.authURL(ar)), ar)
	if claims["acr"] != mfa.ACRPassword || !slices.Equal(amrOf(claims), []string{"fed"}) {
		t.Fatalf("federated: acr %v amr %v", claims["acr"], claims["amr"])
	}
	// Its session is reused as it is for a request that asks for MFA.
	again := spaAuth("acr_values", mfa.ACRMFA)
	if c := e.idClaims(br.get(e.authURL(again)), again); c["acr"] != mfa.ACRPassword {
		t.Fatalf("federated session reused: acr %v", c["acr"])
	}
}

// accounts.mfa off: a user who set up an authenticator signs in with the
// password alone, and acr_values cannot step up.
func TestMFAOff(t *testing.T) {
	e, svc, clk := newMFAEnv(t, storagetest.Backend{Name: "sqlite"}, MFAOff)
	enrolAlice(t, e, svc, clk)
	br := e.browser()
	ar := spaAuth("acr_values", mfa.ACRMFA)
	claims := e.idClaims(br.submitLogin(br.get(e.authURL(ar)), userEmail, userPassword), ar)
	if claims["acr"] != mfa.ACRPassword {
		t.Fatalf("acr %v", claims["acr"])
	}
	if r := br.get(e.issuer + pathSecondStep + "?login=x"); r.status == http.StatusOK && strings.Contains(r.body, `name="code"`) {
		t.Fatal("the second step is served with mfa off")
	}
}

// accounts.mfa off and a client registered with --require-mfa: the broker
// asks no second factor, so the client gets access_denied after the
// password, never a code at the password level (seen issuing one before).
func TestMFAOffClientRequiresMFA(t *testing.T) {
	e, _, _ := newMFAEnv(t, storagetest.Backend{Name: "sqlite"}, MFAOff)
	c, err := e.store.LookupClient(context.Background(), spaID)
	if err != nil {
		t.Fatal(err)
	}
	c.RequireMFA = true
	if err := e.store.UpdateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	br := e.browser()
	p := br.submitLogin(br.get(e.authURL(spaAuth())), userEmail, userPassword)
	q := redirectParams(t, p, spaRedirect)
	if q.Get("error") != "access_denied" || q.Get("code") != "" || !strings.Contains(q.Get("error_description"), "second factor") {
		t.Fatalf("answered %v, want access_denied without a code", q)
	}
}

// A database reader (a stolen backup) finds neither the TOTP key nor a
// recovery code in any column of any table, in any usual encoding; what
// the rows hold does not sign in: the stored recovery-code hash as a code
// is refused.
func TestDatabaseHoldsNoSecondFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, svc, clk := newMFAEnv(t, b, MFAOptional)
		sec, codes := enrolAlice(t, e, svc, clk)
		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(sec)
		if err != nil {
			t.Fatal(err)
		}
		secrets := append(encodings(raw), []byte(sec), []byte(strings.ToLower(sec)))
		for _, c := range codes {
			secrets = append(secrets, []byte(c), []byte(strings.ReplaceAll(c, "-", "")))
		}
		var hashes [][]byte
		for col, vals := range storagetest.Dump(t, e.store) {
			for _, v := range vals {
				for _, s := range secrets {
					if bytes.Contains(bytes.ToLower(v), bytes.ToLower(s)) {
						t.Errorf("%s holds a second-factor secret %q", col, s)
					}
				}
				if col == "recovery_codes.code_hash" {
					hashes = append(hashes, v)
				}
			}
		}
		if len(hashes) != 10 {
			t.Fatalf("%d recovery-code rows", len(hashes))
		}
		br := e.browser()
		p := br.passwordStep(spaAuth())
		if r := br.submitCode(p, string(hashes[0])); r.status != http.StatusUnauthorized {
			t.Fatalf("a stored hash as a code: %d", r.status)
		}
	})
}
