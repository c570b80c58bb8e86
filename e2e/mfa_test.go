package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/bridgekeeper/bridgekeeper/internal/flow"
)

const mfaRedirect = "http://127.0.0.1:5173/callback"

var (
	mfaLoginRe  = regexp.MustCompile(`name="login" value="([^"]+)"`)
	mfaSecretRe = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	mfaFactorRe = regexp.MustCompile(`name="factor" value="([^"]+)"`)
	mfaCodesRe  = regexp.MustCompile(`<code>([a-z0-9]{5}-[a-z0-9]{5})</code>`)
)

// mfaBrowser is a cookie jar that follows the broker's redirects and stops
// at the client's redirect URI.
type mfaBrowser struct {
	t        *testing.T
	issuer   string
	c        *http.Client
	verifier string
}

func newMFABrowser(t *testing.T, issuer string) *mfaBrowser {
	jar, _ := cookiejar.New(nil)
	return &mfaBrowser{t: t, issuer: issuer, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends req and follows redirects inside the broker: the last page
// (status, body, path), or the client's redirect URI.
func (b *mfaBrowser) do(req *http.Request) (int, string, string) {
	b.t.Helper()
	for range 10 {
		res, err := b.c.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode >= 400 || loc == "" {
			return res.StatusCode, string(body), req.URL.Path
		}
		next, _ := req.URL.Parse(loc)
		if strings.HasPrefix(next.String(), mfaRedirect) {
			return res.StatusCode, "", next.String()
		}
		req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
	}
	b.t.Fatal("too many redirects")
	return 0, "", ""
}

func (b *mfaBrowser) get(u string) (int, string, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *mfaBrowser) post(path string, form url.Values) (int, string, string) {
	req, _ := http.NewRequest(http.MethodPost, b.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// password starts an authorization request and signs in with the
// password: the page after it.
func (b *mfaBrowser) password(email, pw string) (string, string, string) {
	b.t.Helper()
	v := make([]byte, 32)
	rand.Read(v)
	b.verifier = base64.RawURLEncoding.EncodeToString(v)
	h := sha256.Sum256([]byte(b.verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {mfaRedirect}, "scope": {"openid"},
		"state": {"state-0123456789"}, "nonce": {"nonce-0123456789"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(h[:])},
		"code_challenge_method": {"S256"}}
	_, page, _ := b.get(b.issuer + "/oauth2/auth?" + q.Encode())
	m := mfaLoginRe.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no login page: %.300s", page)
	}
	_, page, path := b.post("/login", url.Values{"login": {m[1]}, "email": {email}, "password": {pw}})
	lm := mfaLoginRe.FindStringSubmatch(page)
	if lm == nil {
		b.t.Fatalf("after the password: %s %.300s", path, page)
	}
	return lm[1], page, path
}

// claims exchanges the code in redirect and returns the ID token's payload.
func (b *mfaBrowser) claims(redirect string) map[string]any {
	b.t.Helper()
	u, err := url.Parse(redirect)
	if err != nil || u.Query().Get("code") == "" {
		b.t.Fatalf("no code in %q", redirect)
	}
	tok, err := flow.New("spa", mfaRedirect, nil).Exchange(context.Background(), b.issuer, flow.Code{Code: u.Query().Get("code"), Verifier: b.verifier})
	if err != nil || !tok.OK() {
		b.t.Fatalf("exchange: %v %v", tok, err)
	}
	parts := strings.Split(tok.IDToken, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	json.Unmarshal(raw, &c)
	return c
}

func totpAt(t *testing.T, secret string, at time.Time) string {
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTPWithTheBinary runs `bridgekeeper serve` and the CLI: a client
// registered with --require-mfa makes a user without a factor enrol after
// the password (the key shown, confirmed by a code computed from it,
// recovery codes once); the next sign-in asks for a code, the same code is
// refused in another browser; `user reset-mfa` removes the factor, and the
// next sign-in enrols again.
func TestTOTPWithTheBinary(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	env := []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("mfa-e2e-secret-", 3)}
	const email, pw = "ada@example.com", "correct horse battery staple"
	cli(t, env, "", "migrate", "--dsn", dsn)
	cli(t, env, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public", "--redirect-uri", mfaRedirect, "--require-mfa")
	cli(t, env, pw+"\n", "user", "create", "--dsn", dsn, "--email", email, "--password-stdin")
	addr := freeAddr(t)
	issuer := "http://" + addr
	proc := start(t, env, binary(t, "bridgekeeper"), "serve", "--issuer", issuer, "--listen", addr, "--dsn", dsn)
	waitHTTP(t, issuer+"/.well-known/openid-configuration", proc)

	enrol := func() string {
		b := newMFABrowser(t, issuer)
		login, page, path := b.password(email, pw)
		sec, factor := mfaSecretRe.FindStringSubmatch(page), mfaFactorRe.FindStringSubmatch(page)
		if path != "/login/mfa" || sec == nil || factor == nil {
			t.Fatalf("want the enrolment page, got %s: %.400s", path, page)
		}
		_, page, _ = b.post("/login/mfa", url.Values{"login": {login}, "factor": {factor[1]}, "code": {totpAt(t, sec[1], time.Now())}})
		if n := len(mfaCodesRe.FindAllString(page, -1)); n != 10 {
			t.Fatalf("%d recovery codes: %.400s", n, page)
		}
		_, _, redirect := b.post("/login/mfa", url.Values{"login": {login}})
		c := b.claims(redirect)
		if c["acr"] != "urn:bridgekeeper:acr:mfa" {
			t.Fatalf("after enrolment: acr %v amr %v", c["acr"], c["amr"])
		}
		return sec[1]
	}
	sec := enrol()

	// The next step's code (within the ±1 window): the confirming step is used.
	code := totpAt(t, sec, time.Now().Add(30*time.Second))
	b := newMFABrowser(t, issuer)
	login, _, path := b.password(email, pw)
	if path != "/login/mfa" {
		t.Fatalf("second sign-in: %s", path)
	}
	_, _, redirect := b.post("/login/mfa", url.Values{"login": {login}, "code": {code}})
	c := b.claims(redirect)
	amr, _ := c["amr"].([]any)
	if !slices.Contains(amr, any("otp")) || c["acr"] != "urn:bridgekeeper:acr:mfa" {
		t.Fatalf("code sign-in: acr %v amr %v", c["acr"], c["amr"])
	}
	other := newMFABrowser(t, issuer)
	login, _, _ = other.password(email, pw)
	if st, _, _ := other.post("/login/mfa", url.Values{"login": {login}, "code": {code}}); st != http.StatusUnauthorized {
		t.Fatalf("the same code again: %d, want 401", st)
	}

	if out := cli(t, env, "", "user", "reset-mfa", "--dsn", dsn, email); !strings.Contains(out, "removed 1 second factor") {
		t.Fatalf("reset-mfa: %q", out)
	}
	enrol()
}
