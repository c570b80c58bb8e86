package accounts_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestMailedLinks backs docs/accounts.md on the links the pages mail: by
// default activation links last 48 hours, reset links 1 hour and
// e-mail-change links 24 hours; the database holds only the SHA-256 of a
// link's token, never the token; and opening a link (as a mail scanner
// prefetching it does) changes nothing until its button is pressed.
func TestMailedLinks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		token := func(link string) string {
			t.Helper()
			u, err := url.Parse(link)
			if err != nil || u.Query().Get("token") == "" {
				t.Fatalf("no token in %q", link)
			}
			return u.Query().Get("token")
		}
		// checkStored checks the row of a link's token: its id is the
		// token's SHA-256, it lives ttl, and no column of any row of the
		// table holds the token.
		checkStored := func(kind, raw string, ttl time.Duration) {
			t.Helper()
			sum := sha256.Sum256([]byte(raw))
			var row *storage.ActionToken
			n := 0
			for _, a := range storagetest.ActionTokens(t, store) {
				if a.ID == hex.EncodeToString(sum[:]) {
					row = &a
				}
				if a.ID == raw || strings.Contains(a.Data, raw) || a.UserID == raw {
					n++
				}
			}
			if row == nil {
				t.Fatalf("%s link: no row under the token's SHA-256", kind)
			}
			if got := row.ExpiresAt.Sub(row.CreatedAt); got != ttl {
				t.Errorf("%s link lives %v, want %v", kind, got, ttl)
			}
			if n != 0 {
				t.Errorf("%s link: %d rows hold the raw token", kind, n)
			}
		}

		h.register("Ada", adaEmail, adaPass)
		link := h.mailLink(adaEmail, "Activate", "/activate?token=")
		checkStored("activation", token(link), 48*time.Hour)
		// Opened, not pressed: nothing happens.
		wantStatus(t, "opened activation link", h.get(link), http.StatusOK)
		if u := h.user(adaEmail); u.Active || u.EmailVerified {
			t.Fatalf("opening the activation link activated the account: %+v", u)
		}
		wantStatus(t, "activate", h.followLink(link, nil), http.StatusOK)
		if u := h.user(adaEmail); !u.Active {
			t.Fatal("pressing the button did not activate the account")
		}

		wantStatus(t, "reset request", h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)
		link = h.mailLink(adaEmail, "Reset", "/reset/confirm?token=")
		checkStored("reset", token(link), time.Hour)
		wantStatus(t, "opened reset link", h.get(link), http.StatusOK)
		checkPassword(t, h.user(adaEmail), adaPass, true)

		u := h.user(adaEmail)
		h.signIn(h.http, u.ID)
		r := h.submit("/account", "/account/email", url.Values{"new_email": {"countess@example.test"}, "email_password": {adaPass}})
		wantStatus(t, "change e-mail", r, http.StatusOK)
		link = ""
		for range 2 { // the link to the new address, the notice to the old one
			if m := h.smtp.Next(t); m.To[0] == "countess@example.test" {
				link = linkRE.FindString(m.Text)
			}
		}
		checkStored("e-mail change", token(link), 24*time.Hour)
		wantStatus(t, "opened e-mail change link", h.get(link), http.StatusOK)
		if got := h.user(adaEmail); got.ID != u.ID {
			t.Fatalf("opening the e-mail change link changed the address: %+v", got)
		}
		if !strings.Contains(link, "/account/email/confirm?token=") {
			t.Fatalf("e-mail change link %q", link)
		}
	})
}

// TestAnswersTakeTheMinimumTime backs docs/accounts.md ("those answers
// always take at least 400 ms"): with the default MinResponseTime a reset
// request for an unknown and for a known address, and a registration of a
// taken address, each take at least 400 ms.
func TestAnswersTakeTheMinimumTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) { c.MinResponseTime = 0 }) // the default
		h.register("Ada", adaEmail, adaPass)
		for name, send := range map[string]func() response{
			"reset, unknown":    func() response { return h.submit("/reset", "", url.Values{"email": {"nobody@example.test"}}) },
			"reset, known":      func() response { return h.submit("/reset", "", url.Values{"email": {adaEmail}}) },
			"register, taken":   func() response { return h.register("Eve", adaEmail, "another long password 42") },
			"register, unknown": func() response { return h.register("Eve", "eve@example.test", "another long password 42") },
		} {
			start := time.Now()
			r := send()
			if took := time.Since(start); took < 400*time.Millisecond {
				t.Errorf("%s: answered in %v, want at least 400ms", name, took)
			}
			wantStatus(t, name, r, http.StatusOK)
		}
	})
}
