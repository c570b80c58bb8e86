package accounts_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// newKey adds a passkey named name for the user signed in on browser c
// from the account page and returns its authenticator; the notice e-mail
// is read.
func (h *harness) newKey(t *testing.T, c *http.Client, name string) *passkeytest.Authenticator {
	t.Helper()
	own := h.http
	h.http = c
	defer func() { h.http = own }()
	p, opts := h.startPasskey(t, name)
	key := passkeytest.New(localhost(h.srv.URL), "localhost")
	wantStatus(t, "add passkey "+name, h.submitOn(p, "", url.Values{"response": {key.Create(opts, passkeytest.Tamper{})}}), http.StatusOK)
	h.smtp.Next(t) // the notice of the new passkey
	return key
}

// reauthOptions is the passkey re-authentication page's options (JSON)
// and the credential ids its allowCredentials list, sorted.
func reauthOptions(t *testing.T, p response) (string, []string) {
	t.Helper()
	m := optionsRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no passkey options (%d):\n%s", p.status, p.body)
	}
	opts := html.UnescapeString(m[1])
	ids, err := passkeytest.AllowedCredentials(opts)
	if err != nil {
		t.Fatalf("passkey options: %v\n%s", err, opts)
	}
	return opts, ids
}

// newBob creates the user Bob (Ada's password) and a browser signed in
// as him.
func (h *harness) newBob(t *testing.T, store *storage.Store, ada *storage.User) (*storage.User, *http.Client) {
	t.Helper()
	bob := &storage.User{ID: accounts.NewUserID(), Email: "bob@example.com", Name: "Bob", Active: true, EmailVerified: true, PasswordHash: ada.PasswordHash}
	if err := store.CreateUser(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	return bob, h.newBrowserSignedIn(bob.ID)
}

// TestPasskeyReauthAllowsOwnPasskeys: the passkey re-authentication of the
// account pages (here: new recovery codes) asks the browser for exactly
// the signed-in user's passkeys (allowCredentials: all of Ada's, none of
// Bob's, who has passkeys too; Bob's request lists only his), so that the
// browser offers no other account's passkey. Each of Ada's passkeys
// answers it; Bob's passkey is still refused at the finish and changes
// nothing. It failed before the request listed the passkeys (a
// discoverable request with no allowCredentials).
func TestPasskeyReauthAllowsOwnPasskeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h, u := factorsHarness(t, store)
		laptop := h.newKey(t, h.http, "Laptop")
		phone := h.newKey(t, h.http, "Phone")
		_, bobBrowser := h.newBob(t, store, u)
		bobKey := h.newKey(t, bobBrowser, "Bob's")

		ask := func(c *http.Client) response {
			return h.submitFormAs(c, "/account", "/account/mfa/recovery/passkey", url.Values{"recovery_password": {mfaPassword}})
		}
		p := ask(h.http)
		wantStatus(t, "Ada's re-authentication", p, http.StatusOK)
		opts, ids := reauthOptions(t, p)
		if want := passkeytest.CredentialIDs(laptop, phone); !slices.Equal(ids, want) {
			t.Fatalf("Ada's request allows %q, want her passkeys %q", ids, want)
		}
		if bobs := passkeytest.CredentialIDs(bobKey)[0]; strings.Contains(opts, bobs) {
			t.Fatalf("Ada's request names Bob's passkey %s:\n%s", bobs, opts)
		}
		if _, ids := reauthOptions(t, ask(bobBrowser)); !slices.Equal(ids, passkeytest.CredentialIDs(bobKey)) {
			t.Fatalf("Bob's request allows %q, want his passkey only", ids)
		}

		// Bob's passkey answering Ada's request is refused.
		before := unusedCodes(t, store, u)
		foreign := h.submitOn(p, "", url.Values{"response": {bobKey.Get(opts, passkeytest.Tamper{})}})
		wantStatus(t, "Ada's request, Bob's passkey", foreign, http.StatusUnauthorized)
		wantBody(t, "Bob's passkey refused", foreign, "it is not one of yours")
		if len(recoveryCodesOn(foreign)) > 0 || unusedCodes(t, store, u) != before {
			t.Fatal("Bob's passkey made Ada new recovery codes")
		}

		// Each of Ada's passkeys answers.
		for _, key := range []*passkeytest.Authenticator{phone, laptop} {
			p := ask(h.http)
			opts, _ := reauthOptions(t, p)
			done := h.submitOn(p, "", url.Values{"response": {key.Get(opts, passkeytest.Tamper{})}})
			wantStatus(t, "Ada's re-authentication with her passkey", done, http.StatusOK)
			if n := len(recoveryCodesOn(done)); n != mfa.RecoveryNum {
				t.Fatalf("%d new recovery codes shown", n)
			}
			h.wantMail(t, 1, "New recovery codes were made")
		}
	})
}

// TestRemoveAppWithPasskey: a user with an authenticator app and a
// passkey removes the app after the current password and a passkey
// re-authentication (in place of a code): a ceremony begun only after the
// password, bound to the user, the browser and this change, used once.
// The owner is e-mailed, the passkey and the recovery codes stay. The
// account page offers the passkey only to a user who has one. Nothing is
// removed without any proof, after a wrong password, from another
// browser, with a ceremony begun for another user or for new recovery
// codes, with one used already, or with another user's passkey.
func TestRemoveAppWithPasskey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		ctx := context.Background()
		var pk *passkey.Service
		h, u, sec := mfaHarness(t, store, false, withPasskeys(t, store, &pk))
		svc, err := mfa.New(mfa.Config{Store: store, Secret: sec, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		h.enrol(t)
		hasApp := func(userID string) bool {
			t.Helper()
			ok, err := svc.HasFactor(ctx, userID, storage.FactorTOTP)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		const removeBegin, removeFinish = "/account/mfa/totp/remove/passkey", "/account/mfa/totp/remove/passkey/finish"

		// No passkey: the page does not offer one, and the form refuses.
		page := h.get("/account")
		for _, offer := range []string{"use a passkey", removeBegin} {
			if strings.Contains(page.body, offer) {
				t.Fatalf("the account page of a user without a passkey offers %q:\n%s", offer, page.body)
			}
		}
		wantBody(t, "account page with the app alone", page,
			`id="mfa-status">On: signing in with your password also takes a code from your authenticator app.</p>`,
			`<button type="submit">Turn two-step verification off</button>`)
		none := h.submitOn(h.get("/account"), removeBegin, url.Values{"mfa_password": {mfaPassword}})
		wantStatus(t, "remove the app with a passkey, no passkey", none, http.StatusBadRequest)
		wantBody(t, "no passkey", none, "You have no passkey.")

		key := h.newKey(t, h.http, "Laptop")
		wantBody(t, "account page with app and passkey", h.get("/account"),
			`Code from your authenticator app (or a recovery code) <span class="hint">Or leave it empty and use a passkey.</span>`,
			`formaction="`+removeBegin+`">Remove the app with a passkey</button>`,
			// Two-step verification stays on with the passkey: the page says so.
			`id="mfa-status">On: signing in with your password also takes a code from your authenticator app or one of your passkeys.</p>`,
			`<button type="submit">Remove the authenticator app</button>`)
		begin := func(c *http.Client) response {
			t.Helper()
			p := h.submitFormAs(c, "/account", removeBegin, url.Values{"mfa_password": {mfaPassword}})
			wantStatus(t, "begin removing the app with a passkey", p, http.StatusOK)
			wantBody(t, "ceremony page", p, "Then the authenticator app is removed from your account.", `action="`+removeFinish+`"`)
			h.clock.Advance(6 * time.Minute) // past the delay the failed attempts before put on the answer
			return p
		}
		answer := func(p response, k *passkeytest.Authenticator) url.Values {
			opts, _ := reauthOptions(t, p)
			return url.Values{"ceremony": {hiddenValue(p, "ceremony")}, "response": {k.Get(opts, passkeytest.Tamper{})}}
		}
		stillOn := func(what string, r response) {
			t.Helper()
			if r.status == http.StatusOK || !hasApp(u.ID) {
				t.Fatalf("%s removed the app (%d):\n%s", what, r.status, r.body)
			}
			if r.status == http.StatusTooManyRequests {
				t.Fatalf("%s: refused by the login limits, not by the check under test:\n%s", what, r.body)
			}
			h.clock.Advance(16 * time.Minute) // past the window and the delay of the failed attempts
		}

		// Without the password, or without any proof.
		wrongPW := h.submit("/account", removeBegin, url.Values{"mfa_password": {"not the password"}})
		wantStatus(t, "begin with a wrong password", wrongPW, http.StatusBadRequest)
		if strings.Contains(wrongPW.body, "data-options") {
			t.Fatal("a wrong password began a passkey re-authentication")
		}
		stillOn("a wrong password", wrongPW)
		stillOn("no proof", h.submit("/account", removeFinish, nil))
		stillOn("no code, no passkey", h.submit("/account", "/account/mfa/totp/remove", url.Values{"mfa_password": {mfaPassword}}))

		// Another browser of Ada's: the ceremony is bound to the one that began it.
		p := begin(h.http)
		stillOn("another browser", h.submitFormAs(h.newBrowserSignedIn(u.ID), "/account", removeFinish, answer(p, key)))

		// A ceremony begun for new recovery codes does not remove the app.
		rc := h.submit("/account", "/account/mfa/recovery/passkey", url.Values{"recovery_password": {mfaPassword}})
		wantStatus(t, "begin new recovery codes with a passkey", rc, http.StatusOK)
		h.clock.Advance(6 * time.Minute)
		stillOn("a ceremony for recovery codes", h.submit("/account", removeFinish, answer(rc, key)))

		// Another user's passkey, and then the same ceremony used again.
		bob, bobBrowser := h.newBob(t, store, u)
		bobKey := h.newKey(t, bobBrowser, "Bob's")
		p = begin(h.http)
		stillOn("Bob's passkey", h.submitOn(p, "", answer(p, bobKey)))
		stillOn("a ceremony used already", h.submitOn(p, "", answer(p, key)))

		// A ceremony begun for another user: Bob, with an app and a
		// passkey, signed in on Ada's browser, posts her ceremony.
		e, err := svc.StartTOTP(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ConfirmTOTP(ctx, bob, e.FactorID, h.totpCode(e.Secret, 0)); err != nil {
			t.Fatal(err)
		}
		p = begin(h.http)
		h.signIn(h.http, bob.ID)
		asBob := h.submit("/account", removeFinish, answer(p, key))
		if asBob.status == http.StatusOK || !hasApp(bob.ID) {
			t.Fatalf("Ada's ceremony removed Bob's app (%d)", asBob.status)
		}
		stillOn("Ada's ceremony posted by Bob", asBob)
		h.signIn(h.http, u.ID)

		// Ada's passkey, in the browser that began the ceremony.
		codes := unusedCodes(t, store, u)
		p = begin(h.http)
		done := h.submitOn(p, "", answer(p, key))
		wantStatus(t, "remove the app with a passkey", done, http.StatusOK)
		wantBody(t, "app removed", done, "The authenticator app was removed: signing in with your password now asks for one of your passkeys, or a recovery code.")
		if hasApp(u.ID) {
			t.Fatal("the app is still there")
		}
		if len(passkeysOf(t, pk, u)) != 1 || unusedCodes(t, store, u) != codes {
			t.Fatal("removing the app took the passkey or the recovery codes")
		}
		h.wantMail(t, 1, "The authenticator app was removed")
		if !hasApp(bob.ID) {
			t.Fatal("Bob's app went with Ada's")
		}
	})
}
