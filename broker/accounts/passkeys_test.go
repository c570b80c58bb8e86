package accounts_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

var optionsRE = regexp.MustCompile(`data-options="([^"]*)"`)

// passkeyHarness is the account pages with passkeys and a signed-in user
// with a password.
func passkeyHarness(t *testing.T, store *storage.Store) (*harness, *storage.User, *passkey.Service) {
	t.Helper()
	var pk *passkey.Service
	h := newHarness(t, store, withPasskeys(t, store, &pk))
	return h, h.signedInAda(t, store), pk
}

// withPasskeys gives the account pages passkeys, the service in *pk.
func withPasskeys(t *testing.T, store *storage.Store, pk **passkey.Service) func(*accounts.Config) {
	return func(c *accounts.Config) {
		var err error
		// WebAuthn wants a domain: the pages are at localhost for it.
		if *pk, err = passkey.New(passkey.Config{Store: store, Issuer: localhost(c.Issuer)}); err != nil {
			t.Fatal(err)
		}
		c.Passkeys = *pk
	}
}

// signedInAda creates the user Ada with a password and signs her in.
func (h *harness) signedInAda(t *testing.T, store *storage.Store) *storage.User {
	t.Helper()
	hash, err := password.Hash(mfaPassword)
	if err != nil {
		t.Fatal(err)
	}
	u := &storage.User{ID: accounts.NewUserID(), Email: adaEmail, Name: "Ada", Active: true, EmailVerified: true, PasswordHash: hash}
	if err := store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	h.signIn(h.http, u.ID)
	return u
}

// startPasskey asks for a new passkey named name with the password and
// returns the ceremony page and its options.
func (h *harness) startPasskey(t *testing.T, name string) (response, string) {
	t.Helper()
	p := h.submit("/account", "/account/passkeys/new", url.Values{"passkey_name": {name}, "passkey_password": {mfaPassword}})
	wantStatus(t, "add a passkey", p, http.StatusOK)
	m := optionsRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no options on the passkey page:\n%s", p.body)
	}
	return p, html.UnescapeString(m[1])
}

func passkeysOf(t *testing.T, pk *passkey.Service, u *storage.User) []storage.SecondFactor {
	t.Helper()
	keys, err := pk.List(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// A passkey is added after the current password (not without it), with
// a discoverable credential and user verification asked for; the page
// runs only the broker's script; the list shows it with its name and
// last use; removing it takes the password again; both changes e-mail
// the owner.
func TestAccountPasskeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h, u, pk := passkeyHarness(t, store)
		if p := h.get("/account"); !strings.Contains(p.body, `id="passkey-none"`) {
			t.Fatalf("account page without its passkeys section:\n%s", p.body)
		}
		wrong := h.submit("/account", "/account/passkeys/new", url.Values{"passkey_name": {"Laptop"}, "passkey_password": {"not the password"}})
		if wrong.status == http.StatusOK || strings.Contains(wrong.body, "data-options") {
			t.Fatalf("a wrong password started a registration: %d", wrong.status)
		}
		p, opts := h.startPasskey(t, "Laptop")
		for _, want := range []string{`"residentKey":"required"`, `"userVerification":"required"`, `"id":"localhost"`} {
			if !strings.Contains(opts, want) {
				t.Errorf("creation options lack %s: %s", want, opts)
			}
		}
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src "+localhost(h.srv.URL)+passkey.ScriptPath) || strings.Contains(csp, "unsafe-inline'; script") {
			t.Errorf("CSP of the passkey page: %s", csp)
		}
		a := passkeytest.New(localhost(h.srv.URL), "localhost")
		done := h.submitOn(p, "", url.Values{"response": {a.Create(opts, passkeytest.Tamper{})}})
		wantStatus(t, "finish the passkey", done, http.StatusOK)
		wantBody(t, "after adding", done, "Passkey &#34;Laptop&#34; added", "<strong>Laptop</strong>", "never used")
		if msg := h.smtp.Next(t); msg.To[0] != adaEmail || !strings.Contains(msg.Text, "passkey was added") {
			t.Fatalf("notice of the new passkey: %v %q", msg.To, msg.Text)
		}
		keys := passkeysOf(t, pk, u)
		if len(keys) != 1 || keys[0].Name != "Laptop" || keys[0].CredentialID == "" {
			t.Fatalf("stored passkeys: %+v", keys)
		}

		bad := h.submit("/account", "/account/passkeys/remove", url.Values{"passkey": {keys[0].ID}, "passkey_remove_password": {"not the password"}})
		if bad.status == http.StatusOK || len(passkeysOf(t, pk, u)) != 1 {
			t.Fatalf("removed with a wrong password: %d", bad.status)
		}
		gone := h.submit("/account", "/account/passkeys/remove", url.Values{"passkey": {keys[0].ID}, "passkey_remove_password": {mfaPassword}})
		wantStatus(t, "remove", gone, http.StatusOK)
		wantBody(t, "after removing", gone, "Passkey removed", `id="passkey-none"`)
		if msg := h.smtp.Next(t); !strings.Contains(msg.Text, "passkey was removed") {
			t.Fatalf("notice of the removal: %q", msg.Text)
		}
	})
}

// Malformed registration answers (another challenge, another origin,
// another RP ID's hash, truncated CBOR, no user verification), an answer
// posted twice, and one posted from another browser are each refused
// with a clear error, and nothing is stored.
func TestPasskeyRegistrationBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h, u, pk := passkeyHarness(t, store)
		cases := []struct {
			name   string
			tamper passkeytest.Tamper
		}{
			{"wrong challenge", passkeytest.Tamper{Challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
			{"wrong origin", passkeytest.Tamper{Origin: "http://evil.example"}},
			{"wrong RP ID hash", passkeytest.Tamper{RPID: "evil.example"}},
			{"truncated CBOR", passkeytest.Tamper{Truncate: true}},
			{"no user verification", passkeytest.Tamper{NoUV: true}},
		}
		for _, c := range cases {
			p, opts := h.startPasskey(t, "Key")
			a := passkeytest.New(localhost(h.srv.URL), "localhost")
			r := h.submitOn(p, "", url.Values{"response": {a.Create(opts, c.tamper)}})
			wantStatus(t, c.name, r, http.StatusBadRequest)
			wantBody(t, c.name, r, "could not be verified, so it was not added")
			if n := len(passkeysOf(t, pk, u)); n != 0 {
				t.Fatalf("%s: %d passkeys stored", c.name, n)
			}
		}
		if r := h.submitOn(response{body: `<form method="post" action="/account/passkeys/finish">`}, "", url.Values{"response": {"{"}, "ceremony": {"x"}}); r.status != http.StatusForbidden && r.status != http.StatusBadRequest {
			t.Fatalf("garbage without a form token: %d", r.status)
		}

		// Replay: the same answer twice; the second finds no ceremony.
		p, opts := h.startPasskey(t, "Key")
		resp := passkeytest.New(localhost(h.srv.URL), "localhost").Create(opts, passkeytest.Tamper{})
		wantStatus(t, "first", h.submitOn(p, "", url.Values{"response": {resp}}), http.StatusOK)
		h.smtp.Next(t)
		again := h.submitOn(p, "", url.Values{"response": {resp}})
		wantStatus(t, "replayed", again, http.StatusBadRequest)
		wantBody(t, "replayed", again, "expired or was used already")
		if n := len(passkeysOf(t, pk, u)); n != 1 {
			t.Fatalf("after a replay: %d passkeys", n)
		}

		// Another browser of the same user cannot finish this browser's
		// ceremony (it is bound to the cookie of the one that began it).
		p, opts = h.startPasskey(t, "Key")
		other := h.newBrowser()
		h.signIn(other, u.ID)
		form := url.Values{"response": {passkeytest.New(localhost(h.srv.URL), "localhost").Create(opts, passkeytest.Tamper{})}}
		for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
			if m[1] != "csrf_token" {
				form.Set(m[1], html.UnescapeString(m[2]))
			}
		}
		tok := h.doWith(other, mustGet(t, h.srv.URL+"/account"))
		for _, m := range hiddenRE.FindAllStringSubmatch(tok.body, -1) {
			if m[1] == "csrf_token" {
				form.Set("csrf_token", html.UnescapeString(m[2]))
			}
		}
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/account/passkeys/finish", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		cross := h.doWith(other, req)
		wantStatus(t, "another browser", cross, http.StatusBadRequest)
		if n := len(passkeysOf(t, pk, u)); n != 1 {
			t.Fatalf("after another browser's answer: %d passkeys", n)
		}
	})
}

// localhost is u with the host 127.0.0.1 named localhost.
func localhost(u string) string { return strings.Replace(u, "//127.0.0.1:", "//localhost:", 1) }
