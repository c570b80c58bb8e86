package federation_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

var (
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	mailLinkRE   = regexp.MustCompile(`https?://[^\s<>"]+`)
)

// submit posts the first form of page p like a browser: its hidden fields
// and the given ones.
func (b *browser) submit(p page, fields url.Values) page {
	b.t.Helper()
	m := formActionRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no form at %s (%d): %.1500s", p.url, p.status, p.body)
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	return b.postForm(action.String(), form)
}

// register creates a local account on /register in browser b.
func (e *env) register(b *browser, email, pw string) {
	e.t.Helper()
	p := b.submit(b.get(e.issuer+"/register"), url.Values{"name": {"Someone"}, "email": {email}, "password": {pw}})
	if p.status != http.StatusOK && p.status != http.StatusSeeOther {
		e.t.Fatalf("register %s: %d %.1500s", email, p.status, p.body)
	}
}

// activate follows the activation link mailed to address in browser b.
func (e *env) activate(b *browser, address string) {
	e.t.Helper()
	m := e.smtp.Next(e.t)
	if len(m.To) != 1 || m.To[0] != address {
		e.t.Fatalf("mail to %v, want %s", m.To, address)
	}
	for _, l := range mailLinkRE.FindAllString(m.Text, -1) {
		if strings.Contains(l, "/activate") {
			p := b.submit(b.get(l), nil)
			if p.status != http.StatusOK && p.status != http.StatusSeeOther {
				e.t.Fatalf("activate: %d %.1500s", p.status, p.body)
			}
			if u, err := e.store.GetUserByEmail(context.Background(), address); err != nil || !u.Active || !u.EmailVerified {
				e.t.Fatalf("after activation: %+v, %v", u, err)
			}
			return
		}
	}
	e.t.Fatalf("no activation link in %s", m.Text)
}

// localLogin signs in with e-mail and password on the login form and
// returns the ID token's claims; ok is false when the form refused.
func (e *env) localLogin(b *browser, email, pw string) (map[string]any, bool) {
	e.t.Helper()
	ar := spaAuth()
	p := b.get(e.authURL(ar))
	if p.status != http.StatusOK || p.url.Path != "/login" {
		e.t.Fatalf("login page: %d at %s", p.status, p.url)
	}
	p = b.postForm(e.issuer+"/login", url.Values{"login": {p.url.Query().Get("login")}, "email": {email}, "password": {pw}})
	if p.status != http.StatusSeeOther {
		return nil, false
	}
	return e.idClaims(e.exchange(codeFrom(e.t, p), ar).IDToken), true
}

// upstreamCallback runs a federated login up to the broker's answer to the
// upstream's callback.
func (e *env) upstreamCallback(b *browser, ar authRequest, connector, subject string) page {
	e.t.Helper()
	back := e.upstreamLogin(e.startUpstream(b, ar, connector), subject)
	return b.get(back.String())
}

// isLinkPage reports whether p asks the user to prove that the existing
// account is theirs (its password) before the upstream login joins it.
func isLinkPage(p page) bool {
	return p.status == http.StatusOK && strings.Contains(p.body, `name="password"`) &&
		strings.Contains(p.body, "/link/") && p.header.Get("Location") == ""
}

// TestUntrustedConnectorDoesNotLinkByEmail: only a connector configured
// with trust_email may have its verified e-mail addresses join an existing
// user. An untrusted connector (a third-party plugin, an IdP anyone can
// sign up at) that answers with the victim's verified address gets a user
// of its own, and the users it creates hold no address that a trusted
// connector's later login would join.
func TestUntrustedConnectorDoesNotLinkByEmail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, envOptions{backend: b, linkByEmail: true, connectors: func(e *env) []config.Connector {
			// "google" is the same fake upstream as okta, but not
			// trusted for e-mail: it plays the hostile connector.
			return []config.Connector{e.oktaConnector("okta"), {ID: "google", Name: "Untrusted", Path: pluginPath(e.t, "connector-oidc"),
				Config: map[string]any{"preset": "google", "issuer": e.idpTS.URL, "client_id": idpClient, "client_secret": idpSecret}}}
		}})

		// The victim (bob) has a user through the trusted okta.
		victim, _ := e.login(e.browser(), "okta", "1002")
		// The hostile connector answers with bob's verified address.
		attacker, _ := e.login(e.browser(), "google", "1002")
		if attacker["sub"] == victim["sub"] {
			t.Fatalf("the untrusted connector's login landed on the victim's sub %v", victim["sub"])
		}
		u, err := e.store.GetUser(ctx, attacker["sub"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if u.Email != "" || u.EmailVerified {
			t.Errorf("the untrusted connector's user holds the address %q (verified %v)", u.Email, u.EmailVerified)
		}

		// The other way round: the hostile connector is first with
		// alice's address; alice's later login through okta must not
		// join the attacker's user.
		squat, _ := e.login(e.browser(), "google", "1001")
		alice, _ := e.login(e.browser(), "okta", "1001")
		if squat["sub"] == alice["sub"] {
			t.Fatalf("alice's trusted login joined the user the untrusted connector made first (%v)", alice["sub"])
		}
		if u, err := e.store.GetUser(ctx, alice["sub"].(string)); err != nil || u.Email != "alice@example.com" || !u.EmailVerified {
			t.Errorf("alice's user %+v, %v: want her verified address", u, err)
		}

		// A local account with a password: the hostile connector's
		// login does not get its sub either, nor learn that the account
		// exists (no link page: a user of its own, as for any address).
		local := e.createLocalUser("erin@example.com", true)
		if err := e.idp.SetUserDisabled("1005", false); err != nil {
			t.Fatal(err)
		}
		ar := spaAuth()
		p := e.upstreamCallback(e.browser(), ar, "google", "1005")
		if isLinkPage(p) {
			t.Fatal("the untrusted connector's login was offered the local account")
		}
		if c := e.idClaims(e.exchange(codeFrom(t, p), ar).IDToken); c["sub"] == local.ID {
			t.Fatalf("the untrusted connector's login landed on the local account %s", local.ID)
		}
	})
}

// TestPreRegistrationTakeover (the "pre-hijacked account" attack): the
// attacker registers the victim's address with the attacker's password;
// the victim clicks the unsolicited activation link, and later signs in
// through Okta. The Okta login must not join the attacker's account unless
// its owner proves control of it (its password): the victim, who does not
// know the attacker's password, gets an account of their own, and the
// attacker's password never opens the victim's sub. The legitimate owner
// of a local account proves it with the password and is linked.
func TestPreRegistrationTakeover(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		t.Run("attacker", func(t *testing.T) {
			e := newEnv(t, envOptions{backend: b, linkByEmail: true, accounts: true, connectors: oktaOnly})
			const attackerPW = "attacker password 0123"
			attacker := e.browser()
			e.register(attacker, "alice@example.com", attackerPW)
			victim := e.browser()
			e.activate(victim, "alice@example.com") // the unsolicited link
			squatted, err := e.store.GetUserByEmail(ctx, "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}

			ar := spaAuth()
			p := e.upstreamCallback(victim, ar, "okta", "1001")
			if !isLinkPage(p) {
				var sub any
				if p.status == http.StatusSeeOther {
					sub = e.idClaims(e.exchange(codeFrom(t, p), ar).IDToken)["sub"]
				}
				t.Fatalf("the Okta login with a registered address did not ask for proof of control: %d, sub %v (squatted account %s)",
					p.status, sub, squatted.ID)
			}
			// The victim does not know the password: a guess fails and
			// links nothing.
			p = victim.submit(p, url.Values{"password": {"a wrong guess 0123"}, "action": {"link"}})
			if p.status != http.StatusUnauthorized || !isLinkForm(p) {
				t.Fatalf("wrong password on the link page: %d %.800s", p.status, p.body)
			}
			if _, err := e.store.GetIdentity(ctx, "okta", "1001"); err == nil {
				t.Fatal("a wrong password linked the identity")
			}
			// The victim goes on without the existing account.
			p = victim.submit(p, url.Values{"action": {"new"}})
			victimSub := e.idClaims(e.exchange(codeFrom(t, p), ar).IDToken)["sub"]
			if victimSub == squatted.ID {
				t.Fatalf("the victim landed on the attacker's account %s", squatted.ID)
			}
			// The attacker's password opens the attacker's account only.
			c, ok := e.localLogin(attacker, "alice@example.com", attackerPW)
			if !ok || c["sub"] != squatted.ID {
				t.Fatalf("attacker login: ok %v sub %v", ok, c["sub"])
			}
			// The victim's next Okta login is the victim's user, at once.
			again, _ := e.login(e.browser(), "okta", "1001")
			if again["sub"] != victimSub {
				t.Errorf("second Okta login: sub %v, want %v", again["sub"], victimSub)
			}
			if id, err := e.store.GetIdentity(ctx, "okta", "1001"); err != nil || id.UserID == squatted.ID {
				t.Errorf("identity %+v, %v", id, err)
			}
		})
		t.Run("owner", func(t *testing.T) {
			e := newEnv(t, envOptions{backend: b, linkByEmail: true, accounts: true, connectors: oktaOnly})
			const ownerPW = "owner password 0123"
			owner := e.browser()
			e.register(owner, "alice@example.com", ownerPW)
			e.activate(owner, "alice@example.com")
			local, err := e.store.GetUserByEmail(ctx, "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			ar := spaAuth()
			p := e.upstreamCallback(owner, ar, "okta", "1001")
			if !isLinkPage(p) {
				t.Fatalf("no link page: %d %.800s", p.status, p.body)
			}
			// The form belongs to this browser: another one cannot use it.
			other := e.browser()
			if q := other.submit(p, url.Values{"password": {ownerPW}, "action": {"link"}}); q.status == http.StatusSeeOther {
				t.Fatalf("another browser completed the link: %s", q.header.Get("Location"))
			}
			// A cross-site POST of the form is refused, even from this
			// browser with the right password, and links nothing.
			m := formActionRE.FindStringSubmatch(p.body)
			action, err := p.url.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			form := url.Values{}
			for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
				form.Set(h[1], html.UnescapeString(h[2]))
			}
			form.Set("password", ownerPW)
			form.Set("action", "link")
			req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			if q := owner.do(req); q.status != http.StatusForbidden {
				t.Fatalf("a cross-site POST of the link form: %d, want 403", q.status)
			}
			if _, err := e.store.GetIdentity(ctx, "okta", "1001"); err == nil {
				t.Fatal("a cross-site POST linked the identity")
			}
			// The upstream identity waits with the pending login,
			// encrypted: its e-mail is in no pending login's state.
			states := storagetest.Column(t, e.store, "pending_logins", "connector_state")
			if len(states) == 0 {
				t.Fatal("no pending login holds the upstream identity")
			}
			for _, st := range states {
				if strings.Contains(string(st), "alice@example.com") {
					t.Errorf("a pending login holds the upstream identity in clear: %q", st)
				}
			}
			linkPage := p
			p = owner.submit(p, url.Values{"password": {ownerPW}, "action": {"link"}})
			// The page works once.
			if q := owner.submit(linkPage, url.Values{"password": {ownerPW}, "action": {"link"}}); q.status == http.StatusSeeOther {
				t.Fatalf("the link page worked twice: %s", q.header.Get("Location"))
			}
			claims := e.idClaims(e.exchange(codeFrom(t, p), ar).IDToken)
			if claims["sub"] != local.ID {
				t.Fatalf("after proving the password: sub %v, want the local account %s", claims["sub"], local.ID)
			}
			if amr, _ := claims["amr"].([]any); claims["idp"] != "okta" || len(amr) != 2 || amr[0] != "fed" || amr[1] != "pwd" {
				t.Errorf("idp %v amr %v, want okta [fed pwd]", claims["idp"], claims["amr"])
			}
			// Linked for good: the next Okta login goes straight through.
			again, _ := e.login(e.browser(), "okta", "1001")
			if again["sub"] != local.ID {
				t.Errorf("second Okta login: sub %v, want %s", again["sub"], local.ID)
			}
		})
	})
}

// isLinkForm reports whether p shows the link form again (after an error).
func isLinkForm(p page) bool {
	return strings.Contains(p.body, `name="password"`) && strings.Contains(p.body, "/link/")
}
