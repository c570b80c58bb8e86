package accounts_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestSignedOutEverywhereSaysHowLong: the pages that sign a user out
// everywhere (reset done, password changed, the account page's form) say
// that access tokens already issued keep working for up to the access-token
// lifetime, and why (APIs verify them offline).
func TestSignedOutEverywhereSaysHowLong(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) { c.AccessTokenLifetime = 5 * time.Minute })
		const why = "an API checks an access token on its own, without asking us"
		h.register("Ada", adaEmail, adaPass)
		h.followLink(h.mailLink(adaEmail, "Activate", "/activate"), nil)
		u := h.user(adaEmail)

		h.signIn(h.http, u.ID)
		r := h.get("/account")
		wantStatus(t, "account", r, http.StatusOK)
		wantBody(t, "account", r, "Changing your password signs you out everywhere", "for up to 5 minutes", why)

		r = h.submit("/account", "/account/password", url.Values{"current_password": {adaPass}, "new_password": {adaPass2}})
		wantStatus(t, "change password", r, http.StatusOK)
		wantBody(t, "change password", r, "signed out everywhere", "for up to 5 minutes", why)

		h.submit("/reset", "", url.Values{"email": {adaEmail}})
		r = h.followLink(h.mailLink(adaEmail, "Reset", "/reset/confirm?token="), url.Values{"password": {"yet another fine password"}})
		wantStatus(t, "reset", r, http.StatusOK)
		wantBody(t, "reset", r, "signed out everywhere", "for up to 5 minutes", why)
	})
}

// TestAccountSignedOutLinksToSignIn: /account opened signed out links to
// the broker's sign-in that comes back to it (Broker.SignInURL), carrying
// the way back to the application.
func TestAccountSignedOutLinksToSignIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		r := h.get("/account?return_to=" + url.QueryEscape("https://app.example.test/home"))
		wantStatus(t, "signed out", r, http.StatusUnauthorized)
		wantBody(t, "signed out", r, `href="/login/start?return_to=%2Faccount%3Freturn_to%3Dhttps%253A%252F%252Fapp.example.test%252Fhome">Sign in</a>`)
	})
}
