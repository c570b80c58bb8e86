package accounts_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
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
		done, codes := h.addPasskey(t, "Laptop")
		if len(codes) != 0 {
			t.Errorf("a passkey after the app showed %d new recovery codes:\n%s", len(codes), done.body)
		}
		wantBody(t, "a passkey after the app", done, "Your recovery codes still work.")
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

// recoveryCodesOn returns the recovery codes a page shows.
func recoveryCodesOn(p response) []string {
	var codes []string
	for _, c := range recoveryRE.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, c[1])
	}
	return codes
}

// wantMail reads the next n e-mails (sent concurrently, in any order) and
// checks that one of them is to Ada and says want.
func (h *harness) wantMail(t *testing.T, n int, want string) {
	t.Helper()
	var texts []string
	found := false
	for range n {
		m := h.smtp.Next(t)
		found = found || m.To[0] == adaEmail && strings.Contains(m.Text, want)
		texts = append(texts, m.Text)
	}
	if !found {
		t.Fatalf("no e-mail says %q: %q", want, texts)
	}
}

// TestRecoveryCodesPasskeyOnly: a user whose only second factors are
// passkeys sees on the account page how many recovery codes are unused,
// and makes new ones after the password and a second factor — a recovery
// code, or a passkey answer (a ceremony begun only after the password,
// bound to the user and the browser, used once). The new set replaces the
// old at once (the old codes are refused), is shown once, each new code
// works once, and the owner is e-mailed. Without the password, without
// the second factor, from a stranger's session, from a browser that did
// not begin the ceremony, or without the CSRF token nothing changes.
func TestRecoveryCodesPasskeyOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		ctx := context.Background()
		var pk *passkey.Service
		h, u, sec := mfaHarness(t, store, false, withPasskeys(t, store, &pk))
		svc, err := mfa.New(mfa.Config{Store: store, Secret: sec})
		if err != nil {
			t.Fatal(err)
		}
		p, opts := h.startPasskey(t, "Laptop")
		key := passkeytest.New(localhost(h.srv.URL), "localhost")
		first := recoveryCodesOn(h.submitOn(p, "", url.Values{"response": {key.Create(opts, passkeytest.Tamper{})}}))
		if len(first) != mfa.RecoveryNum {
			t.Fatalf("a first passkey showed %d recovery codes", len(first))
		}
		h.smtp.Next(t) // the notice of the new passkey
		wantBody(t, "account page of a passkey-only user", h.get("/account"),
			`id="recovery-status">10 unused recovery codes`, "Make new codes with a passkey", `name="recovery_code"`)

		// No regeneration without the re-authentication.
		wrongPW := h.submit("/account", "/account/mfa/recovery", url.Values{"recovery_password": {"not the password"}, "recovery_code": {first[0]}})
		wantStatus(t, "new codes, wrong password", wrongPW, http.StatusBadRequest)
		noCode := h.submit("/account", "/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}})
		wantStatus(t, "new codes, no second factor", noCode, http.StatusUnauthorized)
		wrongCode := h.submit("/account", "/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}, "recovery_code": {"aaaaa-aaaaa"}})
		wantStatus(t, "new codes, wrong recovery code", wrongCode, http.StatusUnauthorized)
		noPasskeyPW := h.submit("/account", "/account/mfa/recovery/passkey", url.Values{"recovery_password": {"not the password"}})
		if noPasskeyPW.status == http.StatusOK || strings.Contains(noPasskeyPW.body, "data-options") {
			t.Fatalf("a wrong password began a passkey re-authentication: %d", noPasskeyPW.status)
		}
		// A stranger's session, and a post without the CSRF token.
		_, bobBrowser := h.newBob(t, store, u)
		stranger := h.submitFormAs(bobBrowser, "/account", "/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}, "recovery_code": {first[0]}})
		if stranger.status == http.StatusOK || len(recoveryCodesOn(stranger)) > 0 {
			t.Fatalf("a stranger's session made recovery codes: %d", stranger.status)
		}
		noCSRF := h.post("/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}, "recovery_code": {first[0]}}, nil)
		wantStatus(t, "new codes without the CSRF token", noCSRF, http.StatusForbidden)
		if n := unusedCodes(t, store, u); n != mfa.RecoveryNum {
			t.Fatalf("%d unused recovery codes after refused requests, want %d", n, mfa.RecoveryNum)
		}

		// A recovery code re-authenticates; the new set replaces the old.
		again := h.submit("/account", "/account/mfa/recovery", url.Values{"recovery_password": {mfaPassword}, "recovery_code": {first[0]}})
		wantStatus(t, "new codes with a recovery code", again, http.StatusOK)
		second := recoveryCodesOn(again)
		if len(second) != mfa.RecoveryNum {
			t.Fatalf("new codes page shows %d codes:\n%s", len(second), again.body)
		}
		h.wantMail(t, 2, "New recovery codes were made")
		if _, err := svc.Verify(ctx, u, first[1]); !errors.Is(err, mfa.ErrWrongCode) {
			t.Fatalf("an old recovery code after new ones were made: %v", err)
		}
		if _, err := svc.Verify(ctx, u, second[0]); err != nil {
			t.Fatalf("a new recovery code: %v", err)
		}
		if _, err := svc.Verify(ctx, u, second[0]); !errors.Is(err, mfa.ErrWrongCode) {
			t.Fatalf("a new recovery code twice: %v", err)
		}
		wantBody(t, "account page after one code", h.get("/account"), `id="recovery-status">9 unused recovery codes`)

		// Another account's passkey does not answer Ada's ceremony.
		bobKey := h.newKey(t, bobBrowser, "Bob's")
		ask := h.submit("/account", "/account/mfa/recovery/passkey", url.Values{"recovery_password": {mfaPassword}})
		m := optionsRE.FindStringSubmatch(ask.body)
		if m == nil {
			t.Fatalf("no passkey options:\n%s", ask.body)
		}
		foreign := h.submitOn(ask, "", url.Values{"response": {bobKey.Get(html.UnescapeString(m[1]), passkeytest.Tamper{})}})
		wantStatus(t, "Ada's ceremony, Bob's passkey", foreign, http.StatusUnauthorized)
		if n := unusedCodes(t, store, u); n != mfa.RecoveryNum-1 {
			t.Fatalf("%d unused recovery codes after another's passkey, want %d", n, mfa.RecoveryNum-1)
		}

		// A passkey answer re-authenticates, once, in the browser that
		// began it.
		ask = h.submit("/account", "/account/mfa/recovery/passkey", url.Values{"recovery_password": {mfaPassword}})
		wantStatus(t, "new codes with a passkey", ask, http.StatusOK)
		m = optionsRE.FindStringSubmatch(ask.body)
		if m == nil {
			t.Fatalf("no passkey options:\n%s", ask.body)
		}
		answer := url.Values{"response": {key.Get(html.UnescapeString(m[1]), passkeytest.Tamper{})}}
		elsewhere := h.submitFormAs(h.newBrowserSignedIn(u.ID), "/account", "/account/mfa/recovery/passkey/finish",
			url.Values{"ceremony": {hiddenValue(ask, "ceremony")}, "response": answer["response"]})
		if elsewhere.status == http.StatusOK || len(recoveryCodesOn(elsewhere)) > 0 {
			t.Fatalf("another browser used the ceremony: %d", elsewhere.status)
		}
		byKey := h.submitOn(ask, "", answer)
		wantStatus(t, "finish new codes with a passkey", byKey, http.StatusOK)
		third := recoveryCodesOn(byKey)
		if len(third) != mfa.RecoveryNum {
			t.Fatalf("new codes page (passkey) shows %d codes:\n%s", len(third), byKey.body)
		}
		h.wantMail(t, 1, "New recovery codes were made")
		if replay := h.submitOn(ask, "", answer); replay.status == http.StatusOK || len(recoveryCodesOn(replay)) > 0 {
			t.Fatalf("the passkey answer replayed: %d", replay.status)
		}
		if _, err := svc.Verify(ctx, u, second[1]); !errors.Is(err, mfa.ErrWrongCode) {
			t.Fatalf("a code of the replaced set after the passkey made new ones: %v", err)
		}
		if n := unusedCodes(t, store, u); n != mfa.RecoveryNum {
			t.Fatalf("%d unused recovery codes, want %d", n, mfa.RecoveryNum)
		}
		if _, err := svc.Verify(ctx, u, third[0]); err != nil {
			t.Fatalf("a code made after the passkey: %v", err)
		}
	})
}

// hiddenValue is the value of the hidden input name on a page.
func hiddenValue(p response, name string) string {
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	return ""
}

// meetingStore holds the callers of UnusedRecoveryCodes at the meeting
// in meet, while there is one: two requests that check for recovery codes
// and then write them both check before either writes, every run.
type meetingStore struct {
	*storage.Store
	meet *atomic.Pointer[storagetest.Meeting]
}

func (m meetingStore) UnusedRecoveryCodes(ctx context.Context, userID string) (int, error) {
	if meet := m.meet.Load(); meet != nil {
		meet.Arrive()
	}
	return m.Store.UnusedRecoveryCodes(ctx, userID)
}

// TestFirstRecoveryCodesTwoTabs: two tabs finish a first second factor at
// once — one confirms an authenticator app, the other adds a passkey —
// and exactly one shows recovery codes; the other says that the recovery
// codes still work, and the codes shown are the ones stored (each works).
// The store makes both requests read before either writes. It failed
// before the first set was stored under the user's lock: both made a set,
// and the one shown first silently stopped working.
func TestFirstRecoveryCodesTwoTabs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		ctx := context.Background()
		var (
			pk   *passkey.Service
			h    *harness
			meet atomic.Pointer[storagetest.Meeting]
		)
		h, u, sec := mfaHarness(t, store, false, withPasskeys(t, store, &pk), func(c *accounts.Config) {
			f, err := mfa.New(mfa.Config{Store: meetingStore{store, &meet}, Secret: testSecret(t), Now: func() time.Time { return h.clock.Now() }})
			if err != nil {
				t.Fatal(err)
			}
			c.Factors = f
		})
		svc, err := mfa.New(mfa.Config{Store: store, Secret: sec, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			app := h.submit("/account", "/account/mfa/totp", url.Values{"mfa_password": {mfaPassword}})
			m := totpSecretRE.FindStringSubmatch(app.body)
			if m == nil {
				t.Fatalf("no authenticator key:\n%s", app.body)
			}
			key, opts := h.startPasskey(t, "Laptop")
			answer := passkeytest.New(localhost(h.srv.URL), "localhost").Create(opts, passkeytest.Tamper{})
			var appDone, keyDone response
			var wg sync.WaitGroup
			tabs := storagetest.NewMeeting(2)
			meet.Store(tabs)
			wg.Go(func() {
				defer tabs.Leave()
				appDone = h.submitOn(app, "", url.Values{"code": {h.totpCode(m[1], 0)}})
			})
			wg.Go(func() {
				defer tabs.Leave()
				keyDone = h.submitOn(key, "", url.Values{"response": {answer}})
			})
			wg.Wait()
			meet.Store(nil)
			wantStatus(t, "confirm the app", appDone, http.StatusOK)
			wantStatus(t, "add the passkey", keyDone, http.StatusOK)
			appCodes, keyCodes := recoveryCodesOn(appDone), recoveryCodesOn(keyDone)
			shown, other := appCodes, keyDone
			if len(keyCodes) > 0 {
				shown, other = keyCodes, appDone
			}
			if len(appCodes) > 0 && len(keyCodes) > 0 || len(shown) != mfa.RecoveryNum {
				t.Fatalf("round %d: the app showed %d recovery codes, the passkey %d; want one set of %d", round, len(appCodes), len(keyCodes), mfa.RecoveryNum)
			}
			wantBody(t, "the other tab", other, "Your recovery codes still work.")
			for _, c := range shown {
				if _, err := svc.Verify(ctx, u, c); err != nil {
					t.Fatalf("round %d: a recovery code shown: %v", round, err)
				}
			}
			h.smtp.Next(t) // the notices of the app
			h.smtp.Next(t) // and of the passkey
			if _, err := svc.Reset(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(30 * time.Second)
		}
	})
}
