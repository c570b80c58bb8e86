package accounts_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const (
	adaEmail = "ada@example.test"
	adaPass  = "analytical engine notes"
	adaPass2 = "difference engine drafts"
)

func checkPassword(t *testing.T, u *storage.User, pw string, want bool) {
	t.Helper()
	ok, err := password.Verify(u.PasswordHash, pw)
	if err != nil {
		t.Fatal(err)
	}
	if ok != want {
		t.Fatalf("password %q verifies: %v, want %v", pw, ok, want)
	}
}

// giveRefreshToken stores an active refresh token for the user, as the
// broker would after a login.
func giveRefreshToken(t *testing.T, store *storage.Store, userID string) string {
	t.Helper()
	ctx := context.Background()
	client := &storage.Client{ID: "spa-" + userID, Name: "SPA", Public: true, TokenEndpointAuthMethod: "none",
		RedirectURIs: []string{"https://app.example.test/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: []string{"openid", "offline_access"}}
	if err := store.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	req := fosite.NewRequest()
	req.ID = "req-" + userID
	req.Client = client
	req.Session = &openid.DefaultSession{Subject: userID}
	if err := store.TokenStore(storage.TokenStoreConfig{}).CreateRefreshTokenSession(ctx, "refresh-"+userID, "access-"+userID, req); err != nil {
		t.Fatal(err)
	}
	return "refresh-" + userID
}

func refreshTokenActive(t *testing.T, store *storage.Store, sig string) bool {
	t.Helper()
	_, err := store.TokenStore(storage.TokenStoreConfig{}).GetRefreshTokenSession(context.Background(), sig, &openid.DefaultSession{})
	switch {
	case err == nil:
		return true
	case errors.Is(err, fosite.ErrInactiveToken):
		return false
	}
	t.Fatalf("get refresh token: %v", err)
	return false
}

// The whole lifecycle: register → activation mail → activate → log in →
// reset → the old password fails and the new one works; links are single-use.
func TestLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		ctx := context.Background()

		r := h.register("Ada Lovelace", "Ada@Example.test", adaPass)
		wantStatus(t, "register", r, http.StatusOK)
		wantBody(t, "register", r, "Check your inbox", adaEmail)

		u := h.user(adaEmail)
		if u.Active || u.EmailVerified || u.Name != "Ada Lovelace" {
			t.Fatalf("new user %+v: want inactive, unverified, named", u)
		}
		checkPassword(t, u, adaPass, true)
		if err := h.svc.LoginAllowed(u); !errors.Is(err, accounts.ErrNotActivated) {
			t.Fatalf("LoginAllowed before activation = %v, want ErrNotActivated", err)
		}

		link := h.mailLink(adaEmail, "Activate", "/activate?token=")
		r = h.followLink(link, nil)
		wantStatus(t, "activate", r, http.StatusOK)
		wantBody(t, "activate", r, "Your account is active")
		u = h.user(adaEmail)
		if !u.Active || !u.EmailVerified {
			t.Fatalf("after activation: %+v", u)
		}
		if err := h.svc.LoginAllowed(u); err != nil {
			t.Fatalf("LoginAllowed after activation = %v", err)
		}

		// The same link a second time.
		r = h.followLink(link, nil)
		wantStatus(t, "reused activation link", r, http.StatusBadRequest)
		wantBody(t, "reused activation link", r, "already been used")

		// Logged in somewhere: a browser session and a refresh token.
		sessionID := h.signIn(h.newBrowser(), u.ID)
		refresh := giveRefreshToken(t, store, u.ID)

		r = h.submit("/reset", "", url.Values{"email": {adaEmail}})
		wantStatus(t, "reset request", r, http.StatusOK)
		link = h.mailLink(adaEmail, "Reset", "/reset/confirm?token=")

		// A refused password leaves the link usable.
		r = h.followLink(link, url.Values{"password": {"password1"}})
		wantStatus(t, "weak new password", r, http.StatusBadRequest)
		wantBody(t, "weak new password", r, `aria-invalid="true"`, "too common")

		r = h.followLink(link, url.Values{"password": {adaPass2}})
		wantStatus(t, "reset", r, http.StatusOK)
		wantBody(t, "reset", r, "Your password has been changed")
		u = h.user(adaEmail)
		checkPassword(t, u, adaPass, false)
		checkPassword(t, u, adaPass2, true)
		if _, err := store.GetBrowserSession(ctx, sessionID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("browser session after reset: %v, want ErrNotFound", err)
		}
		if refreshTokenActive(t, store, refresh) {
			t.Error("refresh token still active after the reset")
		}

		r = h.followLink(link, url.Values{"password": {"yet another fine password"}})
		wantStatus(t, "reused reset link", r, http.StatusBadRequest)
		checkPassword(t, h.user(adaEmail), adaPass2, true)
	})
}

func TestActivationNotRequired(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) { c.RequireActivation = false })
		wantStatus(t, "register", h.register("", adaEmail, adaPass), http.StatusOK)
		u := h.user(adaEmail)
		if !u.Active || u.EmailVerified {
			t.Fatalf("user %+v: want active and unverified", u)
		}
		if err := h.svc.LoginAllowed(u); err != nil {
			t.Fatalf("LoginAllowed = %v", err)
		}
		// The link still confirms the address.
		wantStatus(t, "confirm", h.followLink(h.mailLink(adaEmail, "Activate", "/activate"), nil), http.StatusOK)
		if !h.user(adaEmail).EmailVerified {
			t.Fatal("address not verified after following the link")
		}
		u.Disabled = true
		if err := h.svc.LoginAllowed(u); !errors.Is(err, accounts.ErrDisabled) {
			t.Fatalf("LoginAllowed(disabled) = %v", err)
		}
	})
}

func TestExpiredLinks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) {
			c.ActivationTTL = 2 * time.Hour
			c.ResetTTL = 30 * time.Minute
		})
		h.register("", adaEmail, adaPass)
		link := h.mailLink(adaEmail, "Activate", "/activate")
		page := h.get(link) // opened in time, submitted too late
		h.clock.Advance(2*time.Hour + time.Second)
		r := h.submitOn(page, "", nil)
		wantStatus(t, "expired activation link", r, http.StatusBadRequest)
		wantBody(t, "expired activation link", r, "has expired", "/register/resend")
		if h.user(adaEmail).Active {
			t.Fatal("activated through an expired link")
		}

		// Resend gives a fresh link that works.
		wantStatus(t, "resend", h.submit("/register/resend", "", url.Values{"email": {adaEmail}}), http.StatusOK)
		wantStatus(t, "new link", h.followLink(h.mailLink(adaEmail, "Activate", "/activate"), nil), http.StatusOK)
		if !h.user(adaEmail).Active {
			t.Fatal("not activated by the resent link")
		}

		h.submit("/reset", "", url.Values{"email": {adaEmail}})
		link = h.mailLink(adaEmail, "Reset", "/reset/confirm")
		h.clock.Advance(31 * time.Minute)
		r = h.followLink(link, url.Values{"password": {adaPass2}})
		wantStatus(t, "expired reset link", r, http.StatusBadRequest)
		checkPassword(t, h.user(adaEmail), adaPass, true)
	})
}

// normalize hides the one thing that must differ between two answers: the
// address the visitor typed.
func normalize(body, email string) string { return strings.ReplaceAll(body, email, "EMAIL") }

func TestNoEnumeration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		h.register("Ada", adaEmail, adaPass)
		h.followLink(h.mailLink(adaEmail, "Activate", "/activate"), nil)
		const nobody = "nobody@example.test"

		// Reset: known and unknown address answer alike.
		known := h.submit("/reset", "", url.Values{"email": {adaEmail}})
		unknown := h.submit("/reset", "", url.Values{"email": {nobody}})
		if known.status != unknown.status || normalize(known.body, adaEmail) != normalize(unknown.body, nobody) {
			t.Fatalf("reset answers differ:\n%d %s\n---\n%d %s", known.status, known.body, unknown.status, unknown.body)
		}
		h.mailLink(adaEmail, "Reset", "/reset/confirm") // only the account's owner got mail

		// Registration: a taken and a free address answer alike.
		taken := h.register("Someone", adaEmail, "some other long password")
		free := h.register("Someone", "free@example.test", "some other long password")
		if taken.status != free.status || normalize(taken.body, adaEmail) != normalize(free.body, "free@example.test") {
			t.Fatalf("registration answers differ:\n%d %s\n---\n%d %s", taken.status, taken.body, free.status, free.body)
		}
		// The owner of the taken address is told, with ways back in; the
		// existing account is untouched.
		for range 2 {
			m := h.smtp.Next(t)
			switch m.To[0] {
			case adaEmail:
				if !strings.Contains(m.Header.Get("Subject"), "already have") || !strings.Contains(m.Text, "/reset") {
					t.Errorf("mail to the owner: %s\n%s", m.Header.Get("Subject"), m.Text)
				}
			case "free@example.test":
				if !strings.Contains(m.Header.Get("Subject"), "Activate") {
					t.Errorf("mail to the new address: %s", m.Header.Get("Subject"))
				}
			default:
				t.Errorf("mail to %v", m.To)
			}
		}
		checkPassword(t, h.user(adaEmail), adaPass, true)

		// Resend: the same for an active, a pending and an unknown address.
		a := h.submit("/register/resend", "", url.Values{"email": {adaEmail}})
		b := h.submit("/register/resend", "", url.Values{"email": {nobody}})
		c := h.submit("/register/resend", "", url.Values{"email": {"free@example.test"}})
		if a.status != b.status || normalize(a.body, adaEmail) != normalize(b.body, nobody) ||
			c.status != b.status || normalize(c.body, "free@example.test") != normalize(b.body, nobody) {
			t.Fatalf("resend answers differ:\n%s\n---\n%s\n---\n%s", a.body, b.body, c.body)
		}
		h.mailLink("free@example.test", "Activate", "/activate") // only the pending account got a new link
	})
}

// blockingMailer holds every message until released.
type blockingMailer struct {
	release chan struct{}
	sent    chan mail.Message
}

func (b *blockingMailer) Send(ctx context.Context, m mail.Message) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.sent <- m
	return nil
}

// The answer to a reset request never waits for the mail server, so a slow
// one cannot tell known addresses from unknown ones.
func TestResetAnswersBeforeMailIsSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		mailer := &blockingMailer{release: make(chan struct{}), sent: make(chan mail.Message, 1)}
		h := newHarness(t, store, func(c *accounts.Config) { c.Mailer = mailer })
		now := time.Now()
		if err := store.CreateUser(context.Background(), &storage.User{ID: accounts.NewUserID(), Email: adaEmail, Active: true,
			EmailVerified: true, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		r := h.submit("/reset", "", url.Values{"email": {adaEmail}})
		wantStatus(t, "reset while the mail server hangs", r, http.StatusOK)
		select {
		case <-mailer.sent:
			t.Fatal("mail was sent before release")
		default:
		}
		close(mailer.release)
		m := <-mailer.sent
		if m.To != adaEmail || !strings.Contains(m.Text, "/reset/confirm?token=") {
			t.Fatalf("mail %+v", m)
		}
	})
}

func TestLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) {
			c.Limits.Reset.PerAccount = accounts.Limit{Max: 2, Window: time.Hour}
			c.Limits.Register.PerIP = accounts.Limit{Max: 3, Window: 10 * time.Minute}
			c.Limits.Login.PerAccountIP = accounts.Limit{Max: 3, Window: 15 * time.Minute}
		})
		for i := range 2 {
			wantStatus(t, "reset "+strconv.Itoa(i), h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)
		}
		r := h.submit("/reset", "", url.Values{"email": {adaEmail}})
		wantStatus(t, "third reset", r, http.StatusTooManyRequests)
		wantBody(t, "third reset", r, "Too many attempts")
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || secs <= 0 || secs > 3600 {
			t.Fatalf("Retry-After %q, want 1..3600 seconds", r.header.Get("Retry-After"))
		}
		// Another account from the same address is not affected by the per-account limit.
		wantStatus(t, "other account", h.submit("/reset", "", url.Values{"email": {"bob@example.test"}}), http.StatusOK)
		h.clock.Advance(time.Hour)
		wantStatus(t, "after the window", h.submit("/reset", "", url.Values{"email": {adaEmail}}), http.StatusOK)

		// Per IP: the fourth registration from one address, whatever the account.
		for i := range 3 {
			wantStatus(t, "register "+strconv.Itoa(i), h.register("", "user"+strconv.Itoa(i)+"@example.test", adaPass), http.StatusOK)
		}
		r = h.register("", "user9@example.test", adaPass)
		wantStatus(t, "fourth registration", r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		if _, err := store.GetUserByEmail(context.Background(), "user9@example.test"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a limited registration created the user: %v", err)
		}

		// The login limiter the broker uses: per (account, address), and
		// its reset after a success.
		ctx := context.Background()
		lim := h.svc.Limiter()
		for i := range 3 {
			if ok, _, err := lim.Allow(ctx, accounts.ActionLogin, adaEmail, "192.0.2.7"); err != nil || !ok {
				t.Fatalf("login attempt %d refused: %v", i, err)
			}
		}
		ok, retry, err := lim.Allow(ctx, accounts.ActionLogin, "ADA@example.test", "192.0.2.7")
		if err != nil || ok || retry <= 0 || retry > 15*time.Minute {
			t.Fatalf("fourth login attempt: ok=%v retry=%v err=%v", ok, retry, err)
		}
		if ok, _, err := lim.Allow(ctx, accounts.ActionLogin, adaEmail, "198.51.100.1"); err != nil || !ok {
			t.Fatalf("another address refused: ok=%v err=%v", ok, err)
		}
		if err := lim.Succeeded(ctx, accounts.ActionLogin, adaEmail, "192.0.2.7"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := lim.Allow(ctx, accounts.ActionLogin, adaEmail, "192.0.2.7"); err != nil || !ok {
			t.Fatalf("after Succeeded: ok=%v err=%v", ok, err)
		}
		if _, _, err := lim.Allow(ctx, "guess", adaEmail, "192.0.2.7"); err == nil {
			t.Fatal("unknown action accepted")
		}
	})
}

func TestLimitsCountAcrossReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		limits := accounts.Limits{Login: accounts.LoginLimits{PerIP: accounts.Limit{Max: 4, Window: time.Minute}}}
		a := accounts.NewLimiter(store, limits, nil, nil)
		b := accounts.NewLimiter(store, limits, nil, nil)
		ctx := context.Background()
		for i := range 4 {
			l := a
			if i%2 == 1 {
				l = b
			}
			// IPv6 addresses in one /64 count together.
			if ok, _, err := l.Allow(ctx, accounts.ActionLogin, "", "2001:db8::"+strconv.Itoa(i+1)); err != nil || !ok {
				t.Fatalf("attempt %d: ok=%v err=%v", i, ok, err)
			}
		}
		if ok, _, _ := a.Allow(ctx, accounts.ActionLogin, "", "2001:db8::ff"); ok {
			t.Fatal("fifth attempt from the same /64 allowed")
		}
		if ok, _, _ := b.Allow(ctx, accounts.ActionLogin, "", "2001:db8:1::1"); !ok {
			t.Fatal("another /64 limited")
		}
	})
}

func TestCrossSitePostRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		page := h.get("/reset")
		m := hiddenRE.FindStringSubmatch(page.body)
		if m == nil || m[1] != "csrf_token" {
			t.Fatalf("no csrf_token on the form:\n%s", page.body)
		}
		form := url.Values{"csrf_token": {m[2]}, "email": {adaEmail}}
		for name, header := range map[string]http.Header{
			"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": {"cross-site"}},
			"foreign Origin":            {"Origin": {"https://evil.example"}},
		} {
			r := h.post("/reset", form, header)
			wantStatus(t, name, r, http.StatusForbidden)
			wantBody(t, name, r, "another site")
		}
		r := h.post("/register", url.Values{"email": {adaEmail}, "password": {adaPass}}, nil)
		wantStatus(t, "no token", r, http.StatusForbidden)
		r = h.post("/register", url.Values{"csrf_token": {"AAAAAAAAAAAAAAAAAAAAAAAAAA"}, "email": {adaEmail}, "password": {adaPass}}, nil)
		wantStatus(t, "wrong token", r, http.StatusForbidden)
		if h.smtp.Received() != 0 {
			t.Fatal("a refused request sent mail")
		}
		if _, err := store.GetUserByEmail(context.Background(), adaEmail); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused registration created the user: %v", err)
		}
		// Same-origin with the token goes through.
		wantStatus(t, "same-origin", h.post("/reset", form, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {h.srv.URL}}), http.StatusOK)
	})
}

func TestRegistrationForm(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		r := h.get("/register?return_to=" + url.QueryEscape("https://app.example.test/home"))
		wantStatus(t, "form", r, http.StatusOK)
		wantBody(t, "form", r, `<label for="email">`, `autocomplete="email"`, `autocomplete="new-password"`,
			`autocomplete="name"`, `href="https://app.example.test/home"`, `name="return_to" value="https://app.example.test/home"`)
		if !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || r.header.Get("X-Frame-Options") != "DENY" ||
			r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("security headers missing: %v", r.header)
		}
		if strings.Contains(h.get("/register?return_to="+url.QueryEscape("https://evil.example/")).body, "evil.example") {
			t.Error("a return link that AllowedReturnURL refuses is shown")
		}

		for _, tc := range []struct{ email, password, field, text string }{
			{"not-an-address", adaPass, "email", "e-mail address like"},
			{adaEmail, "short", "password", "at least 8 characters"},
			{adaEmail, "Password2024!", "password", "too common"},
			{adaEmail, "ada lovelace 1815", "password", "name or e-mail"},
		} {
			r := h.register("Ada Lovelace", tc.email, tc.password)
			wantStatus(t, tc.password, r, http.StatusBadRequest)
			wantBody(t, tc.password, r, `role="alert"`, tc.text, `id="`+tc.field+`"`)
			if !strings.Contains(r.body, `name="`+tc.field+`"`) || !fieldFocused(r.body, tc.field) {
				t.Errorf("%s: the %s field is not marked invalid and focused:\n%s", tc.password, tc.field, r.body)
			}
			if strings.Contains(r.body, tc.password) && tc.field == "password" {
				t.Errorf("the refused password is echoed back")
			}
		}
		if h.smtp.Received() != 0 {
			t.Fatal("refused registrations sent mail")
		}
	})
}

// fieldFocused reports whether the input named field is marked invalid and autofocused.
func fieldFocused(body, field string) bool {
	i := strings.Index(body, `name="`+field+`"`)
	if i < 0 {
		return false
	}
	end := strings.Index(body[i:], ">")
	tag := body[i : i+end]
	return strings.Contains(tag, `aria-invalid="true"`) && strings.Contains(tag, "autofocus")
}

func TestRegistrationClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) { c.AllowRegistration = false })
		wantStatus(t, "form", h.get("/register"), http.StatusNotFound)
		page := h.get("/reset") // for the token
		m := hiddenRE.FindStringSubmatch(page.body)
		r := h.post("/register", url.Values{"csrf_token": {m[2]}, "email": {adaEmail}, "password": {adaPass}}, nil)
		wantStatus(t, "post", r, http.StatusNotFound)
	})
}

func TestAccountPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		wantStatus(t, "signed out", h.get("/account"), http.StatusUnauthorized)

		h.register("Ada", adaEmail, adaPass)
		h.followLink(h.mailLink(adaEmail, "Activate", "/activate"), nil)
		u := h.user(adaEmail)
		h.signIn(h.http, u.ID)
		r := h.get("/account")
		wantStatus(t, "account", r, http.StatusOK)
		wantBody(t, "account", r, adaEmail, `autocomplete="current-password"`)

		// Password: the current one is required.
		r = h.submit("/account", "/account/password", url.Values{"current_password": {"wrong guess here"}, "new_password": {adaPass2}})
		wantStatus(t, "wrong current password", r, http.StatusBadRequest)
		if !fieldFocused(r.body, "current_password") {
			t.Errorf("current_password not focused:\n%s", r.body)
		}
		checkPassword(t, h.user(adaEmail), adaPass, true)

		// E-mail: verified before it takes effect, with a notice to the old address.
		r = h.submit("/account", "/account/email", url.Values{"new_email": {"countess@example.test"}, "email_password": {adaPass}})
		wantStatus(t, "change e-mail", r, http.StatusOK)
		wantBody(t, "change e-mail", r, "countess@example.test")
		if h.user(adaEmail).Email != adaEmail {
			t.Fatal("e-mail changed before confirmation")
		}
		var link string
		for range 2 {
			m := h.smtp.Next(t)
			switch m.To[0] {
			case "countess@example.test":
				link = linkRE.FindString(m.Text)
			case adaEmail:
				if !strings.Contains(m.Text, "countess@example.test") {
					t.Errorf("notice to the old address: %s", m.Text)
				}
			}
		}
		if !strings.Contains(link, "/account/email/confirm?token=") {
			t.Fatalf("confirmation link %q", link)
		}
		wantStatus(t, "confirm e-mail", h.followLink(link, nil), http.StatusOK)
		if got := h.user("countess@example.test"); got.ID != u.ID || !got.EmailVerified {
			t.Fatalf("after confirmation: %+v", got)
		}
		wantStatus(t, "reused e-mail link", h.get(link), http.StatusBadRequest) // the page checks the link before it asks for anything

		// Password change with the right current password signs out everywhere.
		refresh := giveRefreshToken(t, store, u.ID)
		r = h.submit("/account", "/account/password", url.Values{"current_password": {adaPass}, "new_password": {adaPass2}})
		wantStatus(t, "change password", r, http.StatusOK)
		got := h.user("countess@example.test")
		checkPassword(t, got, adaPass, false)
		checkPassword(t, got, adaPass2, true)
		if refreshTokenActive(t, store, refresh) {
			t.Error("refresh token active after a password change")
		}
		if sessions := len(storagetest.BrowserSessions(t, store, u.ID)); sessions != 0 {
			t.Errorf("%d browser sessions left after a password change", sessions)
		}
		wantStatus(t, "signed out by the change", h.get("/account"), http.StatusUnauthorized)
	})
}

func TestTemplateDirOverrides(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "mail"), 0o755); err != nil {
			t.Fatal(err)
		}
		custom := `{{define "content"}}<p>Custom reset for {{.Theme.ProductName}}</p><form method="post" action="{{.Base}}/reset"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><input name="email"></form>{{end}}`
		if err := os.WriteFile(filepath.Join(dir, "reset.html"), []byte(custom), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "mail", "reset.txt"), []byte(`{{define "subject"}}Acme reset{{end}}Go to {{.Link}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, store, func(c *accounts.Config) {
			c.Theme = accounts.Theme{ProductName: "Acme ID", PrimaryColor: "#aa3300", LogoURL: "https://cdn.example.test/logo.png", TemplateDir: dir}
		})
		r := h.get("/reset")
		wantBody(t, "themed reset", r, "Custom reset for Acme ID", "--primary: #aa3300", `src="https://cdn.example.test/logo.png"`)
		wantBody(t, "other pages stay embedded", h.get("/register/resend"), "Send a new link")

		if err := store.CreateUser(context.Background(), &storage.User{ID: accounts.NewUserID(), Email: adaEmail, Active: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		h.submitOn(r, "", url.Values{"email": {adaEmail}})
		h.mailLink(adaEmail, "Acme reset", "/reset/confirm")
	})
}

func TestNewValidates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		for _, cfg := range []accounts.Config{
			{Issuer: "http://127.0.0.1:1"},
			{Store: store, Issuer: "/relative"},
		} {
			if _, err := accounts.New(cfg); err == nil {
				t.Errorf("New(%+v) accepted a bad configuration", cfg)
			}
		}
		// The colour check is the page kit's, the one every page family uses.
		bad := accounts.Config{Store: store, Issuer: "http://127.0.0.1:1", Theme: accounts.Theme{PrimaryColor: "red; background: url(x)"}}
		if _, err := accounts.New(bad); !errors.Is(err, pagekit.ErrThemeColour) {
			t.Errorf("New with primary colour %q: %v, want pagekit.ErrThemeColour", bad.Theme.PrimaryColor, err)
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "register.html"), []byte(`{{define "content"}}{{.Nope`), 0o644)
		if _, err := accounts.New(accounts.Config{Store: store, Issuer: "http://127.0.0.1:1", Theme: accounts.Theme{TemplateDir: dir}}); err == nil {
			t.Error("a broken override template was accepted")
		}
	})
}

// A visitor sent from the broker's login page (?login=ID) is offered to
// continue signing in, on the pages and through the e-mailed link.
func TestContinueSigningIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		const login = "pL_4xv-9QzT1aBcD"
		page := h.get("/register?login=" + login + "&return_to=" + url.QueryEscape("https://app.example.test/"))
		wantBody(t, "register page", page, `name="login" value="`+login+`"`, `href="/login?login=`+login+`"`,
			`href="/reset?login=`+login+`&amp;return_to=https%3A%2F%2Fapp.example.test%2F"`)
		r := h.submitOn(page, "", url.Values{"name": {"Ada"}, "email": {adaEmail}, "password": {adaPass}})
		wantStatus(t, "register", r, http.StatusOK)
		link := h.mailLink(adaEmail, "Activate", "/activate")
		if !strings.Contains(link, "login="+login) || !strings.Contains(link, "return_to=") {
			t.Fatalf("activation link %s lacks the way back", link)
		}
		r = h.followLink(link, nil)
		wantBody(t, "activated", r, "Your account is active", `href="/login?login=`+login+`"`, `href="https://app.example.test/"`)

		if body := h.get(`/reset?login=%22%3E%3Cscript%3E`).body; strings.Contains(body, "script") || strings.Contains(body, "/login?") {
			t.Errorf("a malformed login id is used:\n%s", body)
		}
	})
}

// Mail to an address not yet verified carries no text the registrant chose,
// so registration cannot be used to send spam or phishing to a stranger.
func TestActivationMailCarriesNoRegistrantText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, nil)
		wantStatus(t, "register", h.register("Claim your prize at spam.example", adaEmail, adaPass), http.StatusOK)
		m := h.smtp.Next(t)
		if strings.Contains(m.Text, "spam.example") || strings.Contains(m.HTML, "spam.example") {
			t.Fatalf("activation mail carries the registrant's name:\n%s", m.Text)
		}
	})
}

// Concurrent guesses on a delayed account, through two limiters sharing the
// database (two replicas), take one slot between them.
func TestLoginDelayOneSlotAcrossReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		c := &clock{now: time.Now().UTC()}
		limits := accounts.Limits{Login: accounts.LoginLimits{AccountDelay: accounts.Backoff{Free: 1, Base: time.Minute}}}
		quiet := slog.New(slog.DiscardHandler)
		replicas := []*accounts.Limiter{accounts.NewLimiter(store, limits, c.Now, quiet), accounts.NewLimiter(store, limits, c.Now, quiet)}
		ctx := context.Background()
		ips := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}
		for _, ip := range ips { // each address tries once (not delayed: it had not tried)
			if ok, _, err := replicas[0].Allow(ctx, accounts.ActionLogin, adaEmail, ip); err != nil || !ok {
				t.Fatalf("first attempt from %s: ok=%v err=%v", ip, ok, err)
			}
		}
		c.Advance(5 * time.Minute) // four attempts: 1m doubled thrice, at most Max (5m)
		results := make(chan bool, 8)
		for i := range 8 {
			go func() {
				ok, retry, err := replicas[i%2].Allow(ctx, accounts.ActionLogin, adaEmail, ips[i%4])
				if err != nil || (!ok && retry <= 0) {
					t.Errorf("attempt %d: ok=%v retry=%v err=%v", i, ok, retry, err)
				}
				results <- ok
			}()
		}
		allowed := 0
		for range 8 {
			if <-results {
				allowed++
			}
		}
		if allowed != 1 {
			t.Fatalf("%d of 8 concurrent delayed attempts allowed, want 1", allowed)
		}
		// A new address is not delayed.
		if ok, _, err := replicas[1].Allow(ctx, accounts.ActionLogin, adaEmail, "198.51.100.9"); err != nil || !ok {
			t.Fatalf("an address that had not tried: ok=%v err=%v", ok, err)
		}
	})
}

// An owner who mistyped shares the account's delay with a guesser; a
// password reset clears it for the address that completed the reset.
func TestResetClearsTheOwnersDelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store *storage.Store) {
		h := newHarness(t, store, func(c *accounts.Config) {
			c.Limits.Login.AccountDelay = accounts.Backoff{Free: 2, Base: time.Minute}
		})
		activeAda(t, h)
		ctx := context.Background()
		lim := h.svc.Limiter()
		for i, ip := range []string{"127.0.0.1", "127.0.0.1", "203.0.113.5"} {
			if ok, _, err := lim.Allow(ctx, accounts.ActionLogin, adaEmail, ip); err != nil || !ok {
				t.Fatalf("attempt %d: ok=%v err=%v", i, ok, err)
			}
		}
		if ok, retry, _ := lim.Allow(ctx, accounts.ActionLogin, adaEmail, "127.0.0.1"); ok || retry <= 0 {
			t.Fatalf("a delayed attempt from an address that had failed: ok=%v retry=%v", ok, retry)
		}
		h.submit("/reset", "", url.Values{"email": {adaEmail}})
		wantStatus(t, "reset", h.followLink(h.mailLink(adaEmail, "Reset", "/reset/confirm"), url.Values{"password": {adaPass2}}), http.StatusOK)
		if ok, _, err := lim.Allow(ctx, accounts.ActionLogin, adaEmail, "127.0.0.1"); err != nil || !ok {
			t.Fatalf("after the reset, from the address that completed it: ok=%v err=%v", ok, err)
		}
	})
}
