package accounts_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

const mfaPassword = "a long and good password 7"

var (
	totpSecretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryRE   = regexp.MustCompile(`<code>([a-z0-9]{5}-[a-z0-9]{5})</code>`)
)

// testSecret is the system secret of the second-factor tests.
func testSecret(t *testing.T) *secret.System {
	t.Helper()
	sec, err := secret.Parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// mfaHarness is the account pages with second factors (and what more
// adds), and a signed-in user with a password.
func mfaHarness(t *testing.T, store *storage.Store, reset bool, more ...func(*accounts.Config)) (*harness, *storage.User, *secret.System) {
	t.Helper()
	sec := testSecret(t)
	var h *harness
	h = newHarness(t, store, func(c *accounts.Config) {
		f, err := mfa.New(mfa.Config{Store: store, Secret: sec, Now: func() time.Time { return h.clock.Now() }})
		if err != nil {
			t.Fatal(err)
		}
		c.Factors, c.MFAResetByEmail = f, reset
		for _, m := range more {
			m(c)
		}
	})
	return h, h.signedInAda(t, store), sec
}

func (h *harness) totpCode(sec string, steps int) string {
	h.t.Helper()
	c, err := totp.GenerateCodeCustom(sec, h.clock.Now().Add(time.Duration(steps)*30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// enrol turns TOTP on from the account page and returns the shown secret
// and recovery codes.
func (h *harness) enrol(t *testing.T) (string, []string) {
	t.Helper()
	p := h.submit("/account", "/account/mfa/totp", url.Values{"mfa_password": {mfaPassword}})
	wantStatus(t, "start TOTP", p, http.StatusOK)
	m := totpSecretRE.FindStringSubmatch(p.body)
	if m == nil || !strings.Contains(p.body, `src="data:image/png;base64,`) {
		t.Fatalf("no secret or QR code:\n%s", p.body)
	}
	wrong := h.submitOn(p, "", url.Values{"code": {"000000"}})
	wantStatus(t, "wrong first code", wrong, http.StatusUnauthorized)
	done := h.submitOn(wrong, "", url.Values{"code": {h.totpCode(m[1], 0)}})
	wantStatus(t, "confirm TOTP", done, http.StatusOK)
	var codes []string
	for _, c := range recoveryRE.FindAllStringSubmatch(done.body, -1) {
		codes = append(codes, c[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes:\n%s", len(codes), done.body)
	}
	if msg := h.smtp.Next(t); msg.To[0] != adaEmail || !strings.Contains(msg.Text, "authenticator app was added") {
		t.Fatalf("enrolment mail: %v %s", msg.To, msg.Text)
	}
	h.clock.Advance(30 * time.Second)
	return m[1], codes
}

// TOTP is enrolled on the account page after the password, from a QR code
// and the key as text, confirmed by a first code; the owner gets an
// e-mail; the key is sealed in the database; turning it off or making new
// recovery codes needs a code as well as the password.
func TestAccountTOTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h, u, sys := mfaHarness(t, store, false)
		wantBody(t, "account page", h.get("/account"), `id="mfa-status">Off.`)
		bad := h.submit("/account", "/account/mfa/totp", url.Values{"mfa_password": {"wrong password"}})
		wantStatus(t, "start TOTP with a wrong password", bad, http.StatusBadRequest)
		if strings.Contains(bad.body, "totp-secret") {
			t.Fatal("a key was shown after a wrong password")
		}
		sec, codes := h.enrol(t)
		wantBody(t, "account page", h.get("/account"), `id="mfa-status">On:`, "10 unused recovery codes")

		// At rest: the key is sealed, bound to its row.
		fs, err := store.ListSecondFactors(context.Background(), u.ID)
		if err != nil || len(fs) != 1 {
			t.Fatalf("factors: %v %d", err, len(fs))
		}
		if bytes.Contains(fs[0].Secret, []byte(sec)) || bytes.Contains(bytes.ToUpper(fs[0].Secret), []byte(sec[:8])) {
			t.Fatal("the TOTP key is stored in the clear")
		}
		key := sys.Derive(secret.PurposeSecondFactor)
		if _, err := secret.Open(key, fs[0].Secret, []byte("bridgekeeper second factor v1\x00"+u.ID+"\x00other")); err == nil {
			t.Fatal("the sealed key opens for another factor id")
		}
		if plain, err := secret.Open(key, fs[0].Secret, []byte("bridgekeeper second factor v1\x00"+u.ID+"\x00"+fs[0].ID)); err != nil || string(plain) != sec {
			t.Fatalf("the sealed key does not open with its label: %v", err)
		}

		// Off or new recovery codes: the password alone is not enough.
		noCode := h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {mfaPassword}})
		wantStatus(t, "remove without a code", noCode, http.StatusUnauthorized)
		wrongCode := h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {mfaPassword}, "mfa_code": {"123456"}})
		wantStatus(t, "remove with a wrong code", wrongCode, http.StatusUnauthorized)
		wrongPw := h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {"nope"}, "mfa_code": {h.totpCode(sec, 0)}})
		wantStatus(t, "remove with a wrong password", wrongPw, http.StatusBadRequest)
		if ok, _ := mustFactors(t, store, u.ID); !ok {
			t.Fatal("the factor went without the second factor")
		}
		h.clock.Advance(time.Minute) // past the delays of the wrong attempts
		again := h.submit("/account", "/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}, "recovery_code": {codes[0]}})
		wantStatus(t, "new recovery codes", again, http.StatusOK)
		if n := len(recoveryRE.FindAllString(again.body, -1)); n != 10 {
			t.Fatalf("%d new codes", n)
		}
		// Two notices, sent in the background (in either order).
		both := h.smtp.Next(t).Text + h.smtp.Next(t).Text
		for _, want := range []string{"recovery codes was used", "New recovery codes were made"} {
			if !strings.Contains(both, want) {
				t.Fatalf("mail without %q: %s", want, both)
			}
		}
		// The old codes no longer work.
		old := h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {mfaPassword}, "mfa_code": {codes[1]}})
		wantStatus(t, "remove with an old recovery code", old, http.StatusUnauthorized)

		h.clock.Advance(time.Minute)
		off := h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {mfaPassword}, "mfa_code": {h.totpCode(sec, 0)}})
		wantStatus(t, "remove", off, http.StatusOK)
		wantBody(t, "after removal", off, `id="mfa-status">Off.`)
		if ok, _ := mustFactors(t, store, u.ID); ok {
			t.Fatal("the factor is still there")
		}
		if msg := h.smtp.Next(t); !strings.Contains(msg.Text, "removed") {
			t.Fatalf("removal mail: %s", msg.Text)
		}
	})
}

func mustFactors(t *testing.T, store *storage.Store, userID string) (bool, int) {
	t.Helper()
	fs, err := store.ListSecondFactors(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fs {
		if f.Confirmed {
			n++
		}
	}
	return n > 0, n
}

// A password reset by e-mail removes the second factors only when the
// operator allows it (accounts.mfa_reset_by_email).
func TestResetByEmailAndFactors(t *testing.T) {
	for _, allow := range []bool{false, true} {
		forEachBackend(t, func(t *testing.T, store *storage.Store) {
			h, u, _ := mfaHarness(t, store, allow)
			h.enrol(t)
			r := h.submit("/reset", "", url.Values{"email": {adaEmail}})
			wantStatus(t, "reset", r, http.StatusOK)
			link := h.mailLink(adaEmail, "", "/reset/confirm")
			done := h.followLink(link, url.Values{"password": {"another good password 8"}})
			wantStatus(t, "reset confirm", done, http.StatusOK)
			has, _ := mustFactors(t, store, u.ID)
			if has == allow {
				t.Fatalf("mfa_reset_by_email %v: factors left %v", allow, has)
			}
		})
	}
}
