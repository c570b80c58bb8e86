package accounts_test

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// submitAs is submit in another browser: it opens page with c, fills in
// fields and posts the page's first form with c.
func (h *harness) submitAs(c *http.Client, page string, fields url.Values) response {
	h.t.Helper()
	return h.submitFormAs(c, page, "", fields)
}

// submitFormAs is submitAs for the form whose action is action ("" for the
// first form).
func (h *harness) submitFormAs(c *http.Client, page, action string, fields url.Values) response {
	h.t.Helper()
	if strings.HasPrefix(page, "/") {
		page = h.srv.URL + page
	}
	req, err := http.NewRequest(http.MethodGet, page, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	p := h.doWith(c, req)
	if p.status != http.StatusOK {
		return p
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if action == "" {
		m := actionRE.FindStringSubmatch(p.body)
		if m == nil {
			h.t.Fatalf("no form on %s:\n%s", page, p.body)
		}
		action = html.UnescapeString(m[1])
	}
	for k, v := range fields {
		form[k] = v
	}
	req, err = http.NewRequest(http.MethodPost, h.srv.URL+action, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.doWith(c, req)
}

// activeAda registers and activates Ada and returns her user.
func activeAda(t *testing.T, h *harness) *storage.User {
	t.Helper()
	wantStatus(t, "register", h.register("Ada", adaEmail, adaPass), http.StatusOK)
	wantStatus(t, "activate", h.followLink(h.mailLink(adaEmail, "Activate", "/activate"), nil), http.StatusOK)
	return h.user(adaEmail)
}

// emailChangeLink asks, in browser c signed in as u, to move u to newEmail
// and returns the confirmation link mailed there.
func (h *harness) emailChangeLink(c *http.Client, u *storage.User, newEmail, pw string) string {
	h.t.Helper()
	h.signIn(c, u.ID)
	r := h.submitFormAs(c, "/account", "/account/email", url.Values{"new_email": {newEmail}, "email_password": {pw}})
	if r.status != http.StatusOK {
		h.t.Fatalf("e-mail change request: %d\n%s", r.status, r.body)
	}
	var link string
	for range 2 { // the link to the new address, the notice to the old one
		m := h.smtp.Next(h.t)
		if m.To[0] == newEmail {
			for _, l := range linkRE.FindAllString(m.Text, -1) {
				if strings.Contains(l, "/account/email/confirm?token=") {
					link = l
				}
			}
		}
	}
	if link == "" {
		h.t.Fatalf("no confirmation link mailed to %s", newEmail)
	}
	return link
}

// The review's attack: someone who once knew the password asks to move the
// account to their own address; the owner resets the password; the old
// link must not hand the account over afterwards.
func TestEmailChangeLinkDiesWithPasswordReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		ada := activeAda(t, h)
		attacker := h.newBrowser()
		link := h.emailChangeLink(attacker, ada, "attacker@example.test", adaPass)

		// The owner resets the password (in her own browser).
		wantStatus(t, "reset request", h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)
		wantStatus(t, "reset", h.followLink(h.mailLink(adaEmail, "Reset", "/reset/confirm"), url.Values{"password": {adaPass2}}), http.StatusOK)

		// The attacker's session died with the reset; the link died too,
		// with the old password or with none.
		for _, pw := range []string{"", adaPass} {
			r := h.submitAs(attacker, link, url.Values{"password": {pw}})
			if r.status == http.StatusOK {
				t.Fatalf("old e-mail-change link confirmed after the reset (password %q):\n%s", pw, r.body)
			}
			if got := h.user(adaEmail); got.ID != ada.ID {
				t.Fatalf("account moved to %s", got.Email)
			}
		}
		// Even signed in again (with the new password), the link is dead.
		r := h.submitAs(h.newBrowserSignedIn(ada.ID), link, nil)
		wantStatus(t, "old link, owner's session", r, http.StatusBadRequest)
		if _, err := store.GetUserByEmail(context.Background(), "attacker@example.test"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("attacker's address on an account: %v", err)
		}
	})
}

func (h *harness) newBrowserSignedIn(userID string) *http.Client {
	c := h.newBrowser()
	h.signIn(c, userID)
	return c
}

// Every security change (reset, password change, e-mail change) ends every
// outstanding link of the user: activation, reset and e-mail change.
func TestSecurityChangesEndOutstandingLinks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) { c.RequireActivation = false })
		wantStatus(t, "register", h.register("Ada", adaEmail, adaPass), http.StatusOK)
		activation := h.mailLink(adaEmail, "Activate", "/activate")
		ada := h.user(adaEmail)
		owner := h.newBrowserSignedIn(ada.ID)

		// A password change on the account page.
		h.submit("/reset", "", url.Values{"email": {adaEmail}})
		reset := h.mailLink(adaEmail, "Reset", "/reset/confirm")
		change := h.emailChangeLink(owner, ada, "countess@example.test", adaPass)
		r := h.submitAs(owner, "/account", url.Values{"current_password": {adaPass}, "new_password": {adaPass2}})
		// The account page's first form is the password form.
		wantStatus(t, "change password", r, http.StatusOK)
		for name, l := range map[string]string{"activation": activation, "reset": reset, "e-mail change": change} {
			r := h.submitAs(h.newBrowserSignedIn(ada.ID), l, url.Values{"password": {"a brand new passphrase"}})
			wantStatus(t, name+" link after a password change", r, http.StatusBadRequest)
		}
		u := h.user(adaEmail)
		checkPassword(t, u, adaPass2, true)
		if u.EmailVerified {
			t.Fatal("the activation link verified the address after the password change")
		}

		// An e-mail change ends the links sent before it.
		h.submit("/reset", "", url.Values{"email": {adaEmail}})
		reset = h.mailLink(adaEmail, "Reset", "/reset/confirm")
		owner = h.newBrowserSignedIn(ada.ID)
		change = h.emailChangeLink(owner, ada, "countess@example.test", adaPass2)
		other := h.emailChangeLink(owner, ada, "lovelace@example.test", adaPass2)
		wantStatus(t, "confirm", h.submitAs(owner, change, nil), http.StatusOK)
		wantStatus(t, "reset link after an e-mail change", h.followLink(reset, url.Values{"password": {"a brand new passphrase"}}), http.StatusBadRequest)
		wantStatus(t, "second change link after an e-mail change", h.submitAs(owner, other, nil), http.StatusBadRequest)
		u = h.user("countess@example.test")
		checkPassword(t, u, adaPass2, true)

		// A reset ends the other reset links.
		h.submit("/reset", "", url.Values{"email": {"countess@example.test"}})
		first := h.mailLink("countess@example.test", "Reset", "/reset/confirm")
		h.clock.Advance(time.Second)
		h.submit("/reset", "", url.Values{"email": {"countess@example.test"}})
		second := h.mailLink("countess@example.test", "Reset", "/reset/confirm")
		wantStatus(t, "reset", h.followLink(second, url.Values{"password": {"a brand new passphrase"}}), http.StatusOK)
		wantStatus(t, "older reset link after a reset", h.followLink(first, url.Values{"password": {"another brand new passphrase"}}), http.StatusBadRequest)
		checkPassword(t, h.user("countess@example.test"), "a brand new passphrase", true)
	})
}

// Confirming an e-mail change needs the account's session or its password:
// the link alone, opened in another browser, changes nothing.
func TestEmailChangeConfirmNeedsTheAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		ada := activeAda(t, h)
		owner := h.newBrowser()
		link := h.emailChangeLink(owner, ada, "countess@example.test", adaPass)

		stranger := h.newBrowser()
		p := h.doWith(stranger, mustGet(t, link))
		wantStatus(t, "link in another browser", p, http.StatusOK)
		wantBody(t, "link in another browser", p, `name="password"`, "Sign in")
		for _, pw := range []string{"", "not her password"} {
			r := h.submitAs(stranger, link, url.Values{"password": {pw}})
			wantStatus(t, "confirm without the account (password "+pw+")", r, http.StatusBadRequest)
			wantBody(t, "confirm without the account", r, `aria-invalid="true"`)
			if h.user(adaEmail).ID != ada.ID {
				t.Fatal("address changed without the account's session or password")
			}
		}
		// Signed in as someone else: still the password of the account.
		bob := &storage.User{ID: "u-bob", Email: "bob@example.test", Active: true}
		if err := store.CreateUser(context.Background(), bob); err != nil {
			t.Fatal(err)
		}
		r := h.submitAs(h.newBrowserSignedIn(bob.ID), link, nil)
		wantStatus(t, "confirm as another user", r, http.StatusBadRequest)
		if h.user(adaEmail).ID != ada.ID {
			t.Fatal("address changed from another user's session")
		}
		// With her password, the link works in any browser ("sign in, then continue").
		r = h.submitAs(stranger, link, url.Values{"password": {adaPass}})
		wantStatus(t, "confirm with the password", r, http.StatusOK)
		if got := h.user("countess@example.test"); got.ID != ada.ID {
			t.Fatalf("address not changed: %+v", got)
		}
		// And in her own signed-in browser, no password is asked.
		link = h.emailChangeLink(owner, ada, "lovelace@example.test", adaPass)
		p = h.doWith(owner, mustGet(t, link))
		if strings.Contains(p.body, `name="password"`) {
			t.Errorf("the owner's own browser is asked for the password:\n%s", p.body)
		}
		wantStatus(t, "confirm in the owner's browser", h.submitAs(owner, link, nil), http.StatusOK)
		if got := h.user("lovelace@example.test"); got.ID != ada.ID {
			t.Fatalf("address not changed: %+v", got)
		}
	})
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
