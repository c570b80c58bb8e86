package accounts_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// factorsHarness is the account pages with authenticator apps and
// passkeys, and a signed-in user with a password.
func factorsHarness(t *testing.T, store *storage.Store) (*harness, *storage.User) {
	t.Helper()
	var pk *passkey.Service
	h, u, _ := mfaHarness(t, store, false, withPasskeys(t, store, &pk))
	return h, u
}

// addPasskey adds a passkey from the account page and returns the page
// that answers, with the recovery codes it shows.
func (h *harness) addPasskey(t *testing.T, name string) (response, []string) {
	t.Helper()
	p, opts := h.startPasskey(t, name)
	done := h.submitOn(p, "", url.Values{"response": {passkeytest.New(localhost(h.srv.URL), "localhost").Create(opts, passkeytest.Tamper{})}})
	wantStatus(t, "add a passkey", done, http.StatusOK)
	wantBody(t, "after adding a passkey", done, "added: it signs you in without your password")
	var codes []string
	for _, c := range recoveryRE.FindAllStringSubmatch(done.body, -1) {
		codes = append(codes, c[1])
	}
	h.smtp.Next(t) // the notice of the new passkey
	return done, codes
}

func unusedCodes(t *testing.T, store *storage.Store, u *storage.User) int {
	t.Helper()
	n, err := store.UnusedRecoveryCodes(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRecoveryCodesWithPasskeys: whichever second factor comes first —
// authenticator app or passkey — its enrolment shows ten recovery codes
// once; the next one keeps them (and says so); a user whose passkey made
// none (added before passkeys made codes) gets them with the app. An
// authenticator confirmed after a passkey gave no codes at all.
func TestRecoveryCodesWithPasskeys(t *testing.T) {
	run := func(name string, f func(t *testing.T, store *storage.Store)) {
		t.Run(name, func(t *testing.T) { forEachBackend(t, f) })
	}
	run("passkey then app", func(t *testing.T, store *storage.Store) {
		h, u := factorsHarness(t, store)
		_, codes := h.addPasskey(t, "Laptop")
		if len(codes) != mfa.RecoveryNum || unusedCodes(t, store, u) != mfa.RecoveryNum {
			t.Fatalf("a first passkey showed %d recovery codes, %d stored; want %d", len(codes), unusedCodes(t, store, u), mfa.RecoveryNum)
		}
		p := h.submit("/account", "/account/mfa/totp", url.Values{"mfa_password": {mfaPassword}})
		m := totpSecretRE.FindStringSubmatch(p.body)
		if m == nil {
			t.Fatalf("no authenticator key:\n%s", p.body)
		}
		done := h.submitOn(p, "", url.Values{"code": {h.totpCode(m[1], 0)}})
		wantStatus(t, "confirm the app", done, http.StatusOK)
		wantBody(t, "app after a passkey", done, "Two-step verification is on. Your recovery codes still work.")
		if n := unusedCodes(t, store, u); n != mfa.RecoveryNum {
			t.Errorf("%d unused recovery codes after the app, want the passkey's %d", n, mfa.RecoveryNum)
		}
		// A code shown with the passkey works (here: to make new codes).
		again := h.submit("/account", "/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}, "recovery_code": {codes[0]}})
		wantStatus(t, "new codes with a passkey's recovery code", again, http.StatusOK)
	})
	run("passkey without codes then app", func(t *testing.T, store *storage.Store) {
		h, u := factorsHarness(t, store)
		h.addPasskey(t, "Laptop")
		if err := store.ReplaceRecoveryCodes(context.Background(), u.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, codes := h.enrol(t); len(codes) != mfa.RecoveryNum || unusedCodes(t, store, u) != mfa.RecoveryNum {
			t.Errorf("the app after a passkey without codes: %d shown, %d stored", len(codes), unusedCodes(t, store, u))
		}
	})
	run("app then passkey", func(t *testing.T, store *storage.Store) {
		h, u := factorsHarness(t, store)
		key, _ := h.enrol(t)
		if done, codes := h.addPasskey(t, "Laptop"); len(codes) != 0 {
			t.Errorf("a passkey after the app showed %d new recovery codes:\n%s", len(codes), done.body)
		}
		if n := unusedCodes(t, store, u); n != mfa.RecoveryNum {
			t.Errorf("%d unused recovery codes after the passkey, want the app's %d", n, mfa.RecoveryNum)
		}
		// The app removed, the passkey stays and so do the codes: the
		// page says so rather than "no longer work".
		off := h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {mfaPassword}, "mfa_code": {h.totpCode(key, 0)}})
		wantStatus(t, "remove the app", off, http.StatusOK)
		wantBody(t, "app removed, passkey kept", off, "asks for one of your passkeys, or a recovery code")
		if n := unusedCodes(t, store, u); n != mfa.RecoveryNum {
			t.Errorf("%d unused recovery codes after removing the app, want %d", n, mfa.RecoveryNum)
		}
	})
}
