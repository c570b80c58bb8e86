package accounts_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// A NUL byte or invalid UTF-8 in any field of any form is a 400 with the
// form and an error on that field — never a 500 — and changes nothing.
func TestUnusableCharactersAreFormErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		ada := activeAda(t, h)
		h.submit("/reset", "", url.Values{"email": {adaEmail}})
		reset := h.mailLink(adaEmail, "Reset", "/reset/confirm")
		owner := h.newBrowserSignedIn(ada.ID)
		change := h.emailChangeLink(owner, ada, "countess@example.test", adaPass)
		wantStatus(t, "register bob", h.register("Bob", "bob@example.test", adaPass), http.StatusOK)
		activation := h.mailLink("bob@example.test", "Activate", "/activate")

		const newcomer = "newcomer@example.test"
		type form struct {
			page, action string
			fields       url.Values
			visible      []string // the inputs people type into
			hidden       []string
			signedIn     bool
		}
		forms := []form{
			{"/register", "", url.Values{"name": {"New Comer"}, "email": {newcomer}, "password": {adaPass}},
				[]string{"name", "email", "password"}, []string{"return_to", "login"}, false},
			{"/register/resend", "", url.Values{"email": {newcomer}}, []string{"email"}, []string{"return_to"}, false},
			{"/reset", "", url.Values{"email": {adaEmail}}, []string{"email"}, []string{"login"}, false},
			{reset, "", url.Values{"password": {"an entirely new passphrase"}}, []string{"password"}, []string{"token"}, false},
			{activation, "", url.Values{}, nil, []string{"token"}, false},
			{"/account", "/account/password", url.Values{"current_password": {adaPass}, "new_password": {"an entirely new passphrase"}},
				[]string{"current_password", "new_password"}, []string{"return_to"}, true},
			{"/account", "/account/email", url.Values{"new_email": {"lovelace@example.test"}, "email_password": {adaPass}},
				[]string{"new_email", "email_password"}, nil, true},
			{change, "", url.Values{"password": {adaPass}}, []string{"password"}, []string{"token"}, false},
		}
		for _, bad := range []string{"\x00", "\xff\xfe"} {
			for _, f := range forms {
				for _, field := range append(append([]string{}, f.visible...), f.hidden...) {
					what := f.page + f.action + " " + field + " " + url.QueryEscape(bad)
					c := h.newBrowser()
					if f.signedIn {
						h.signIn(c, ada.ID)
					}
					fields := url.Values{}
					for k, v := range f.fields {
						fields[k] = v
					}
					v := fields.Get(field)
					fields.Set(field, v[:len(v)/2]+bad+v[len(v)/2:])
					r := h.submitFormAs(c, f.page, f.action, fields)
					wantStatus(t, what, r, http.StatusBadRequest)
					wantBody(t, what, r, `role="alert"`, "be used here", `<form method="post"`)
					if slices.Contains(f.visible, field) && !fieldFocused(r.body, field) {
						t.Errorf("%s: the field is not marked invalid and focused:\n%s", what, r.body)
					}
				}
			}
		}
		// Nothing changed: no account, the same password and address, the
		// links still work.
		if _, err := store.GetUserByEmail(context.Background(), newcomer); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused registration created the user: %v", err)
		}
		u := h.user(adaEmail)
		checkPassword(t, u, adaPass, true)
		if bob := h.user("bob@example.test"); bob.Active {
			t.Fatal("a refused activation activated the account")
		}
		wantStatus(t, "activation link after", h.followLink(activation, nil), http.StatusOK)
		wantStatus(t, "e-mail link after", h.submitAs(owner, change, nil), http.StatusOK)
	})
}
