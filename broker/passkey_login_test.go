package broker

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/internal/syncbuf"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

var (
	passkeyOptionsRe  = regexp.MustCompile(`data-options="([^"]*)"`)
	passkeyCeremonyRe = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)
)

// localhostURL is u with the host 127.0.0.1 named localhost: WebAuthn
// wants a domain, so the passkeys of a test broker are localhost's.
func localhostURL(u string) string { return strings.Replace(u, "//127.0.0.1:", "//localhost:", 1) }

// newPasskeyEnv is a test broker with passkeys (and second factors under
// policy optional), and the passkey service's log.
func newPasskeyEnv(t testing.TB, b storagetest.Backend, more ...func(*Config)) (*testEnv, *passkey.Service, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	var pk *passkey.Service
	e := newTestEnv(t, b, func(c *Config) {
		var err error
		pk, err = passkey.New(passkey.Config{Store: c.Store.(*storage.Store), Issuer: localhostURL(c.Issuer), Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		f, err := mfa.New(mfa.Config{Store: c.Store.(mfa.Store), Secret: c.Secret, Issuer: "Test"})
		if err != nil {
			t.Fatal(err)
		}
		c.Passkeys, c.Factors, c.MFA = pk, f, MFAOptional
		for _, m := range more {
			m(c)
		}
	})
	return e, pk, logs
}

// enrolPasskey registers a passkey of a new software authenticator for
// u through the service (the account page's part is tested in
// broker/accounts).
func enrolPasskey(t testing.TB, e *testEnv, pk *passkey.Service, u *storage.User, synced bool) (*passkeytest.Authenticator, *storage.SecondFactor) {
	t.Helper()
	ctx := context.Background()
	rec := httptest.NewRecorder()
	c, err := pk.BeginRegistration(ctx, rec, httptest.NewRequest(http.MethodPost, e.issuer+"/account/passkeys/new", nil), u)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, e.issuer+"/account/passkeys/finish", nil)
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	a := passkeytest.New(localhostURL(e.issuer), "localhost")
	a.Synced = synced
	f, err := pk.FinishRegistration(ctx, req, u, c.Handle, "Test key", a.Create(c.Options, passkeytest.Tamper{}))
	if err != nil {
		t.Fatal(err)
	}
	return a, f
}

// passkeyLogin opens the login page of ar and returns it with its
// passkey options.
func (b *browser) passkeyLogin(ar authRequest) (page, string) {
	b.e.t.Helper()
	p := b.get(b.e.authURL(ar))
	m := passkeyOptionsRe.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil || !strings.Contains(p.body, `autocomplete="email webauthn"`) {
		b.e.t.Fatalf("login page without the passkey form: %d %.600s", p.status, p.body)
	}
	return p, html.UnescapeString(m[1])
}

// submitPasskey posts a passkey answer from the login page p.
func (b *browser) submitPasskey(p page, response string) page {
	b.e.t.Helper()
	m := passkeyCeremonyRe.FindStringSubmatch(p.body)
	if m == nil {
		b.e.t.Fatalf("no ceremony on the page: %.400s", p.body)
	}
	return b.postForm(b.e.issuer+pathPasskeyLogin, url.Values{"login": {loginID(b.e.t, p)}, "ceremony": {m[1]}, "response": {response}})
}

// hasSession reports whether the browser holds a broker session cookie.
func (b *browser) hasSession() bool {
	u, _ := url.Parse(b.e.issuer)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie && c.Value != "" {
			return true
		}
	}
	return false
}

func factorByID(t testing.TB, e *testEnv, userID, id string) *storage.SecondFactor {
	t.Helper()
	fs, err := e.store.ListSecondFactors(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fs {
		if fs[i].ID == id {
			return &fs[i]
		}
	}
	return nil
}

// A passkey alone signs the user in: no password and no second step
// (though the passkey is a factor that a password sign-in would ask
// for), amr hwk (swk for a synced passkey),
// user, mfa, acr mfa; the session satisfies a later acr_values step-up
// without a page; the sign counter and last use are recorded.
func TestPasskeySignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, pk, _ := newPasskeyEnv(t, b)
		a, f := enrolPasskey(t, e, pk, e.user, false)

		br := e.browser()
		ar := spaAuth()
		p, opts := br.passkeyLogin(ar)
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src "+pk.ScriptURL()) {
			t.Fatalf("login page CSP: %s", csp)
		}
		done := br.submitPasskey(p, a.Get(opts, passkeytest.Tamper{}))
		claims := e.idClaims(done, ar)
		if got := amrOf(claims); !slices.Equal(got, []string{"hwk", "user", "mfa"}) || claims["acr"] != mfa.ACRMFA || claims["sub"] != e.user.ID {
			t.Fatalf("passkey sign-in: amr %v acr %v sub %v", got, claims["acr"], claims["sub"])
		}
		if got := factorByID(t, e, e.user.ID, f.ID); got.Counter != 1 || got.LastUsedAt == nil {
			t.Fatalf("after sign-in: counter %d, last use %v", got.Counter, got.LastUsedAt)
		}
		// Step-up to acr mfa: the passkey session has it already.
		ar2 := spaAuth("acr_values", mfa.ACRMFA)
		if c := e.idClaims(br.get(e.authURL(ar2)), ar2); c["acr"] != mfa.ACRMFA {
			t.Fatalf("step-up after a passkey: acr %v", c["acr"])
		}

		// A synced passkey is a software key.
		s, _ := enrolPasskey(t, e, pk, e.user, true)
		br2 := e.browser()
		ar3 := spaAuth()
		p3, opts3 := br2.passkeyLogin(ar3)
		if got := amrOf(e.idClaims(br2.submitPasskey(p3, s.Get(opts3, passkeytest.Tamper{})), ar3)); !slices.Equal(got, []string{"swk", "user", "mfa"}) {
			t.Fatalf("synced passkey: amr %v", got)
		}
	})
}

// Malformed or hostile sign-in answers each get the login page again
// with a clear error and a new challenge, and store nothing (no session,
// the passkey's counter and last use unchanged): another challenge,
// origin or RP ID's hash, truncated authenticator data, a bad
// signature, no user verification, an assertion replayed (with its own
// ceremony, and with a new one), a cloned authenticator's lower counter
// (logged), an unknown or removed passkey, another browser's ceremony.
func TestPasskeySignInBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, pk, logs := newPasskeyEnv(t, b)
		a, f := enrolPasskey(t, e, pk, e.user, false)
		unchanged := func(what string, br *browser, want int64) {
			t.Helper()
			got := factorByID(t, e, e.user.ID, f.ID)
			if br.hasSession() || got == nil || got.Counter != want {
				t.Fatalf("%s: session %v, factor %+v (want counter %d)", what, br.hasSession(), got, want)
			}
		}
		cases := []struct {
			name   string
			tamper passkeytest.Tamper
			status int
		}{
			{"wrong challenge", passkeytest.Tamper{Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, http.StatusUnauthorized},
			{"wrong origin", passkeytest.Tamper{Origin: "http://evil.example"}, http.StatusUnauthorized},
			{"wrong RP ID hash", passkeytest.Tamper{RPID: "evil.example"}, http.StatusUnauthorized},
			{"truncated authenticator data", passkeytest.Tamper{Truncate: true}, http.StatusBadRequest},
			{"bad signature", passkeytest.Tamper{Signature: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}}, http.StatusUnauthorized},
			{"no user verification", passkeytest.Tamper{NoUV: true}, http.StatusUnauthorized},
		}
		for _, c := range cases {
			br := e.browser()
			p, opts := br.passkeyLogin(spaAuth())
			r := br.submitPasskey(p, a.Get(opts, c.tamper))
			if r.status != c.status || !strings.Contains(r.body, "could not be verified") || !passkeyOptionsRe.MatchString(r.body) {
				t.Fatalf("%s: %d, want %d with the error and a new challenge: %.400s", c.name, r.status, c.status, r.body)
			}
			unchanged(c.name, br, 0)
		}
		for _, junk := range []string{"", "{", `{"id":"x","type":"public-key","response":{}}`, strings.Repeat("A", 70000)} {
			br := e.browser()
			p, _ := br.passkeyLogin(spaAuth())
			if r := br.submitPasskey(p, junk); r.status != http.StatusBadRequest {
				t.Fatalf("junk %.20q: %d, want 400", junk, r.status)
			}
			unchanged("junk", br, 0)
		}

		// A good answer signs in once; the same answer again is refused,
		// on its own ceremony (used up) and on a new one (the counter
		// did not advance).
		br := e.browser()
		ar := spaAuth()
		p, opts := br.passkeyLogin(ar)
		good := a.Get(opts, passkeytest.Tamper{})
		used := int64(a.Count) // the bad answers above counted up too
		e.idClaims(br.submitPasskey(p, good), ar)
		if r := br.submitPasskey(p, good); r.status != http.StatusBadRequest && r.status != http.StatusGone {
			t.Fatalf("replayed on its own ceremony: %d %.300s", r.status, r.body)
		}
		replay := e.browser()
		rp, _ := replay.passkeyLogin(spaAuth())
		if r := replay.submitPasskey(rp, good); r.status != http.StatusUnauthorized {
			t.Fatalf("replayed on a new ceremony: %d", r.status)
		}
		unchanged("replays", replay, used)

		// A clone of the authenticator with a lower counter.
		clone := *a
		clone.Count = 0
		cb := e.browser()
		cp, copts := cb.passkeyLogin(spaAuth())
		if r := cb.submitPasskey(cp, clone.Get(copts, passkeytest.Tamper{})); r.status != http.StatusUnauthorized {
			t.Fatalf("cloned counter: %d", r.status)
		}
		unchanged("clone", cb, used)
		if !strings.Contains(logs.String(), "sign counter went backwards") {
			t.Fatalf("the clone was not logged:\n%s", logs.String())
		}

		// Another browser's ceremony.
		ob, other := e.browser(), e.browser()
		op, oopts := ob.passkeyLogin(spaAuth())
		mine, _ := other.passkeyLogin(spaAuth())
		form := url.Values{"login": {loginID(t, mine)}, "ceremony": {passkeyCeremonyRe.FindStringSubmatch(op.body)[1]}, "response": {a.Get(oopts, passkeytest.Tamper{})}}
		if r := other.postForm(e.issuer+pathPasskeyLogin, form); r.status != http.StatusBadRequest || !strings.Contains(r.body, "expired or was used") {
			t.Fatalf("another browser's ceremony: %d", r.status)
		}
		unchanged("another browser", other, used)

		// Unknown, then removed.
		stranger := passkeytest.New(localhostURL(e.issuer), "localhost")
		stranger.UserHandle = []byte(e.user.ID)
		sb := e.browser()
		sp, sopts := sb.passkeyLogin(spaAuth())
		if r := sb.submitPasskey(sp, stranger.Get(sopts, passkeytest.Tamper{})); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "not registered") {
			t.Fatalf("unknown passkey: %d", r.status)
		}
		if err := pk.Remove(context.Background(), e.user.ID, f.ID); err != nil {
			t.Fatal(err)
		}
		rb := e.browser()
		rpg, ropts := rb.passkeyLogin(spaAuth())
		if r := rb.submitPasskey(rpg, a.Get(ropts, passkeytest.Tamper{})); r.status != http.StatusUnauthorized || rb.hasSession() {
			t.Fatalf("removed passkey: %d", r.status)
		}
	})
}

// Passkey answers count against the login limits of the account they
// claim and the client IP: after repeated bad ones, 429 with
// Retry-After, and a good one is refused too while limited.
func TestPasskeyRateLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := &limitClock{now: time.Now()}
		e, pk, _ := newPasskeyEnv(t, b, func(c *Config) { withLoginLimits(c, clk) })
		a, _ := enrolPasskey(t, e, pk, e.user, false)
		br := e.browser()
		var r page
		for i := range 40 {
			p, opts := br.passkeyLogin(spaAuth())
			r = br.submitPasskey(p, a.Get(opts, passkeytest.Tamper{Signature: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, byte(i + 1)}}))
			if r.status == http.StatusTooManyRequests {
				break
			}
			if r.status != http.StatusUnauthorized {
				t.Fatalf("bad answer %d: %d", i, r.status)
			}
		}
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); r.status != http.StatusTooManyRequests || err != nil || secs < 1 {
			t.Fatalf("after many bad answers: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
		p, opts := br.passkeyLogin(spaAuth())
		if r := br.submitPasskey(p, a.Get(opts, passkeytest.Tamper{})); r.status != http.StatusTooManyRequests || br.hasSession() {
			t.Fatalf("a good answer while limited: %d", r.status)
		}
	})
}

// A user with a passkey who signs in with the password is asked for the
// second factor, and the passkey answers it: amr pwd hwk mfa. Another
// user's passkey there is refused (the step stays, nothing is signed in).
func TestPasskeySecondStep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e, pk, _ := newPasskeyEnv(t, b)
		a, _ := enrolPasskey(t, e, pk, e.user, false)
		carol := &storage.User{ID: "u-carol", Email: "carol@example.com", Active: true}
		if err := e.store.CreateUser(context.Background(), carol); err != nil {
			t.Fatal(err)
		}
		c, _ := enrolPasskey(t, e, pk, carol, false)

		br := e.browser()
		ar := spaAuth()
		p := br.passwordStep(ar)
		m := passkeyOptionsRe.FindStringSubmatch(p.body)
		if m == nil || !strings.Contains(p.body, "Use your passkey") { // the user's only factor
			t.Fatalf("second step without the passkey: %.600s", p.body)
		}
		other := br.submitPasskey(p, c.Get(html.UnescapeString(m[1]), passkeytest.Tamper{}))
		if other.status != http.StatusUnauthorized || !strings.Contains(other.body, "belongs to another account") || br.hasSession() {
			t.Fatalf("another user's passkey at the second step: %d %.300s", other.status, other.body)
		}
		m = passkeyOptionsRe.FindStringSubmatch(other.body)
		if m == nil {
			t.Fatalf("the refused second step has no new challenge: %.400s", other.body)
		}
		claims := e.idClaims(br.submitPasskey(other, a.Get(html.UnescapeString(m[1]), passkeytest.Tamper{})), ar)
		if got := amrOf(claims); !slices.Equal(got, []string{"pwd", "hwk", "mfa"}) || claims["acr"] != mfa.ACRMFA || claims["sub"] != e.user.ID {
			t.Fatalf("password then passkey: amr %v acr %v sub %v", got, claims["acr"], claims["sub"])
		}
	})
}

// TestSecondStepOffersTheUsersFactors: the second-step page offers what
// the user has: the code field for an authenticator app (its code, or a
// recovery code), for recovery codes alone as "Recovery code", and not at
// all for a user whose only factor is a passkey and who has no recovery
// codes; the passkey to a user who has one, as the way on when there is
// no app ("Use your passkey"), as the alternative when there is ("Use a
// passkey instead"). Also on the page shown again after a refused passkey
// answer. The page said "Enter your code" to a passkey-only user.
func TestSecondStepOffersTheUsersFactors(t *testing.T) {
	cases := []struct {
		name                  string
		app, passkey, codes   bool
		title, label, button  string
		codeField, passkeyBtn bool
	}{
		{name: "app", app: true, title: "Enter your code", label: ">Code<", codeField: true},
		{name: "passkey", passkey: true, title: "Use your passkey", button: "Use your passkey", passkeyBtn: true},
		{name: "passkey and recovery codes", passkey: true, codes: true, title: "Use your passkey", label: ">Recovery code<",
			button: "Use your passkey", codeField: true, passkeyBtn: true},
		{name: "app and passkey", app: true, passkey: true, codes: true, title: "Enter your code", label: ">Code<",
			button: "Use a passkey instead", codeField: true, passkeyBtn: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, pk, _ := newPasskeyEnv(t, storagetest.Backends(t)[0])
			ctx := context.Background()
			svc := e.srv.cfg.Factors
			if c.passkey {
				enrolPasskey(t, e, pk, e.user, false)
			}
			if c.app {
				en, err := svc.StartTOTP(ctx, e.user)
				if err != nil {
					t.Fatal(err)
				}
				c, err := totp.GenerateCode(en.Secret, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := svc.ConfirmTOTP(ctx, e.user, en.FactorID, c); err != nil {
					t.Fatal(err)
				}
			}
			if c.codes {
				if _, err := svc.NewRecoveryCodes(ctx, e.user.ID); err != nil {
					t.Fatal(err)
				}
			} else if err := e.store.ReplaceRecoveryCodes(ctx, e.user.ID, nil); err != nil {
				t.Fatal(err)
			}
			br := e.browser()
			p := br.passwordStep(spaAuth())
			pages := []page{p}
			if c.passkeyBtn {
				pages = append(pages, br.submitPasskey(p, "not a passkey answer"))
			}
			for i, p := range pages {
				what := []string{"the second step", "the second step after a refused passkey"}[i]
				if !strings.Contains(p.body, "<h1>"+c.title+"</h1>") {
					t.Errorf("%s: title is not %q: %.1500s", what, c.title, p.body)
				}
				if got := strings.Contains(p.body, `name="code"`); got != c.codeField {
					t.Errorf("%s: code field %v, want %v", what, got, c.codeField)
				}
				if c.codeField && !strings.Contains(p.body, c.label) {
					t.Errorf("%s: the code field is not labelled %q", what, c.label)
				}
				if got := strings.Contains(p.body, `data-passkey="login"`); got != c.passkeyBtn {
					t.Errorf("%s: passkey form %v, want %v", what, got, c.passkeyBtn)
				}
				if c.passkeyBtn && !strings.Contains(p.body, ">"+c.button+"</button>") {
					t.Errorf("%s: the passkey button does not say %q", what, c.button)
				}
			}
		})
	}
}
