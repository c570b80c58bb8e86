package federation_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/fakeidp"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// forEachBackend runs fn on every storage backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, b storagetest.Backend)) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// TestLoginThroughPresets logs users in through the Okta and Google
// presets of connector-oidc and through connector-facebook, as real plugin
// processes against the fake upstream: the login page offers each, the ID
// token's sub is the broker's user (stable across logins), idp and amr say
// how, and the identity link keeps the connector data.
func TestLoginThroughPresets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newEnv(t, envOptions{backend: b})
		ctx := context.Background()
		br := e.browser()

		p := br.get(e.authURL(spaAuth()))
		for _, name := range []string{"Okta", "Google", "Facebook"} {
			if !strings.Contains(p.body, "Continue with "+name) {
				t.Errorf("login page lacks %q", "Continue with "+name)
			}
		}
		// The login page's Okta button starts the upstream login.
		var connect string
		for _, h := range hrefs(p.body) {
			if strings.Contains(h, "/connect/okta?login=") {
				connect = h
			}
		}
		if connect == "" {
			t.Fatalf("no /connect/okta link on the login page: %.2000s", p.body)
		}
		up := br.get(connect).location(t)
		if !strings.HasPrefix(up.String(), e.idpTS.URL+"/oauth2/default/v1/authorize") {
			t.Fatalf("connect redirects to %s", up)
		}

		subs := map[string]string{}
		for _, tc := range []struct{ connector, subject, email string }{
			{"okta", "1001", "alice@example.com"},
			{"google", "1002", "bob@example.org"},
			{"facebook", "1001", ""}, // Facebook e-mails are not verified: neither linked nor claimed
		} {
			claims, tr := e.login(e.browser(), tc.connector, tc.subject)
			checkFederated(t, claims, tc.connector)
			sub, _ := claims["sub"].(string)
			if sub == "" || sub == tc.subject || !strings.HasPrefix(sub, "u_") {
				t.Errorf("%s: sub = %q, want a broker user id", tc.connector, sub)
			}
			if tr.RefreshToken == "" {
				t.Errorf("%s: no refresh token", tc.connector)
			}
			if claims["email"] != nil && claims["email"] != tc.email || (claims["email"] == nil) != (tc.email == "") {
				t.Errorf("%s: email = %v, want %q", tc.connector, claims["email"], tc.email)
			}
			link, err := e.store.GetIdentity(ctx, tc.connector, tc.subject)
			if err != nil {
				t.Fatalf("%s: identity: %v", tc.connector, err)
			}
			if link.UserID != sub || len(link.ConnectorData) == 0 {
				t.Errorf("%s: identity = %+v", tc.connector, link)
			}
			subs[tc.connector] = sub
		}
		if subs["okta"] == subs["facebook"] {
			t.Error("okta and facebook identities share a user although linking is off")
		}
		// The same upstream identity is the same user next time, and the
		// login is saved with the link (the upstream's new refresh token).
		first, err := e.store.GetIdentity(ctx, "okta", "1001")
		if err != nil {
			t.Fatal(err)
		}
		claims, _ := e.login(e.browser(), "okta", "1001")
		if claims["sub"] != subs["okta"] {
			t.Errorf("second okta login: sub %v, want %s", claims["sub"], subs["okta"])
		}
		second, err := e.store.GetIdentity(ctx, "okta", "1001")
		if err != nil {
			t.Fatal(err)
		}
		firstData, err := federation.OpenConnectorData(e.fed, first)
		if err != nil {
			t.Fatal(err)
		}
		secondData, err := federation.OpenConnectorData(e.fed, second)
		if err != nil {
			t.Fatal(err)
		}
		if second.UserID != subs["okta"] || len(secondData) == 0 || string(secondData) == string(firstData) ||
			second.LastLoginAt.Before(first.LastLoginAt) || !second.CreatedAt.Equal(first.CreatedAt) {
			t.Errorf("link after the second login: %+v (first %+v)", second, first)
		}
		if claims["name"] != "Alice Anderson" {
			t.Errorf("name = %v", claims["name"])
		}
	})
}

// TestIDPHintGoesStraightUpstream: idp_hint skips the login page, and the
// authorization request itself sends the browser upstream.
func TestIDPHintGoesStraightUpstream(t *testing.T) {
	e := newEnv(t, envOptions{})
	br := e.browser()
	ar := spaAuth()
	ar.params.Set("idp_hint", "google")
	p := br.get(e.authURL(ar))
	if !strings.HasSuffix(p.url.Path, "/oauth2/auth") {
		t.Errorf("the browser went upstream from %s, not from the authorization request", p.url.Path)
	}
	up := p.location(t)
	if !strings.HasPrefix(up.String(), e.idpTS.URL+"/o/oauth2/v2/auth?") {
		t.Fatalf("idp_hint=google went to %s", up)
	}
	q := up.Query()
	if q.Get("redirect_uri") != e.issuer+"/callback/google" || len(q.Get("state")) < 20 || q.Get("nonce") == "" || q.Get("code_challenge") == "" {
		t.Errorf("upstream request %s", up.RawQuery)
	}
	if br.cookie(e.issuer+"/callback/google", "bk_fed") == "" {
		t.Error("no login cookie for the callback")
	}
	if br.cookie(e.issuer+"/login", "bk_fed") != "" {
		t.Error("the login cookie is sent beyond the callback path")
	}
	// An unknown hint shows the login page.
	ar = spaAuth()
	ar.params.Set("idp_hint", "nope")
	if p := br.get(e.authURL(ar)); p.status != http.StatusOK || !strings.Contains(p.body, "Continue with Okta") {
		t.Errorf("unknown idp_hint: %d %s", p.status, p.url)
	}
}

// TestIDPHintWhenTheConnectorFailsToStart: when the connector cannot start
// the login at the authorization request (here: the upstream's discovery
// document fails), the browser goes through /connect, which tries again;
// when that fails too, the user gets the connector's error page with a way
// back to the login page, never a 5xx without explanation.
func TestIDPHintWhenTheConnectorFailsToStart(t *testing.T) {
	// newEnvFailing has the upstream's discovery document fail n times
	// (the connector fetches it on its first login, then keeps it).
	newEnvFailing := func(n int32) *env {
		var failures atomic.Int32
		failures.Store(n)
		return newEnv(t, envOptions{
			connectors: oktaOnly,
			upstream: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/openid-configuration") && failures.Add(-1) >= 0 {
						http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
						return
					}
					h.ServeHTTP(w, r)
				})
			},
		})
	}
	ar := spaAuth()
	ar.params.Set("idp_hint", "okta")

	t.Run("the start fails, /connect works", func(t *testing.T) {
		e := newEnvFailing(1)
		br := e.browser()
		p := br.get(e.authURL(ar))
		if !strings.HasPrefix(p.url.Path, "/connect/okta") {
			t.Errorf("after a failed start the browser went upstream from %s, want /connect/okta", p.url.Path)
		}
		back := e.upstreamLogin(p.location(t), "1001")
		tr := e.exchange(codeFrom(t, br.get(back.String())), ar)
		checkFederated(t, e.idClaims(tr.IDToken), "okta")
	})
	t.Run("both fail", func(t *testing.T) {
		e := newEnvFailing(2)
		br := e.browser()
		p := br.get(e.authURL(ar))
		errorPage(t, br, e, p, http.StatusBadGateway, "Signing in with Okta did not work")
		if !slices.ContainsFunc(hrefs(p.body), func(h string) bool { return strings.Contains(h, "/login?login=") }) {
			t.Errorf("the error page has no way back to the login page: %.1500s", p.body)
		}
	})
}

// TestCallbackFailures: every way the upstream's answer can be wrong ends
// on an error page, with no session and no code for the client.
func TestCallbackFailures(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newEnv(t, envOptions{backend: b})

		t.Run("bad state", func(t *testing.T) {
			br := e.browser()
			back := e.upstreamLogin(e.startUpstream(br, spaAuth(), "okta"), "1001")
			q := back.Query()
			q.Set("state", q.Get("state")+"x")
			back.RawQuery = q.Encode()
			errorPage(t, br, e, br.get(back.String()), http.StatusBadRequest, "does not belong to the sign-in this browser started")
		})
		t.Run("state of another browser", func(t *testing.T) {
			victim, attacker := e.browser(), e.browser()
			back := e.upstreamLogin(e.startUpstream(attacker, spaAuth(), "okta"), "1001")
			errorPage(t, victim, e, victim.get(back.String()), http.StatusBadRequest, "not started in this browser")
		})
		t.Run("upstream error", func(t *testing.T) {
			br := e.browser()
			back, err := fakeidp.Deny(context.Background(), e.startUpstream(br, spaAuth(), "okta").String())
			if err != nil {
				t.Fatal(err)
			}
			loginID := br.cookie(e.issuer+"/callback/okta", "bk_fed")
			p := br.get(back.String())
			errorPage(t, br, e, p, http.StatusForbidden, "cancelled or refused")
			if !strings.Contains(p.body, "/login?login=") {
				t.Errorf("no way back to the login page: %s", p.body)
			}
			// The pending login stays for another try; the spent state and
			// the connector's secrets for it do not.
			sum := sha256.Sum256([]byte(loginID))
			pending, err := e.store.GetPendingLogin(context.Background(), hex.EncodeToString(sum[:]))
			if err != nil {
				t.Fatalf("pending login after an upstream error: %v", err)
			}
			if pending.UpstreamStateHash != "" || len(pending.ConnectorState) != 0 {
				t.Errorf("after an upstream error the pending login keeps state %q, connector state %q",
					pending.UpstreamStateHash, pending.ConnectorState)
			}
		})
		for _, tc := range []struct {
			name  string
			fault fakeidp.Fault
		}{
			{"wrong nonce", fakeidp.FaultWrongNonce},
			{"bad signature", fakeidp.FaultBadSignature},
			{"expired id token", fakeidp.FaultExpired},
			{"wrong audience", fakeidp.FaultWrongAudience},
			{"hs256", fakeidp.FaultHS256},
		} {
			t.Run(tc.name, func(t *testing.T) {
				br := e.browser()
				up := e.startUpstream(br, spaAuth(), "google")
				e.idp.BreakNextIDToken(tc.fault)
				back := e.upstreamLogin(up, "1002")
				errorPage(t, br, e, br.get(back.String()), http.StatusBadRequest, "could not be verified")
			})
		}
		t.Run("facebook without e-mail", func(t *testing.T) {
			br := e.browser()
			back := e.upstreamLogin(e.startUpstream(br, spaAuth(), "facebook"), "1004")
			errorPage(t, br, e, br.get(back.String()), http.StatusForbidden, "Facebook did not share an e-mail address")
		})
	})
}

// TestStateIsSingleUse: a callback can be replayed neither after a failure
// (the state is used up before the connector runs) nor after a success.
func TestStateIsSingleUse(t *testing.T) {
	e := newEnv(t, envOptions{})

	// Replay after a failed callback, cookies and all.
	br := e.browser()
	ar := spaAuth()
	up := e.startUpstream(br, ar, "okta")
	loginCookie := br.cookie(e.issuer+"/callback/okta", "bk_fed")
	e.idp.BreakNextIDToken(fakeidp.FaultWrongNonce)
	back := e.upstreamLogin(up, "1001")
	errorPage(t, br, e, br.get(back.String()), http.StatusBadRequest, "could not be verified")
	restore := func() {
		u, _ := url.Parse(e.issuer + "/callback/okta")
		br.c.Jar.SetCookies(u, []*http.Cookie{{Name: "bk_fed", Value: loginCookie, Path: "/callback/okta"}})
	}
	restore()
	errorPage(t, br, e, br.get(back.String()), http.StatusBadRequest, "does not belong to the sign-in this browser started")

	// Replay after a success: no second code, no new session.
	br = e.browser()
	up = e.startUpstream(br, ar, "okta")
	loginCookie = br.cookie(e.issuer+"/callback/okta", "bk_fed")
	back = e.upstreamLogin(up, "1001")
	codeFrom(t, br.get(back.String()))
	session := br.cookie(e.issuer+"/", "bk_session")
	if session == "" {
		t.Fatal("no session after the login")
	}
	restore()
	p := br.get(back.String())
	if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
		t.Errorf("replayed callback: %d %s", p.status, p.header.Get("Location"))
	}
	if br.cookie(e.issuer+"/", "bk_session") != session {
		t.Error("the replay started a new session")
	}
}

// TestConcurrentCallbacks: of simultaneous callbacks with one state,
// exactly one logs in, and only that one reaches the connector (the
// upstream's token endpoint sees one code redemption).
func TestConcurrentCallbacks(t *testing.T) {
	var redemptions atomic.Int32
	e := newEnv(t, envOptions{upstream: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/token") {
				redemptions.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}})
	br := e.browser()
	back := e.upstreamLogin(e.startUpstream(br, spaAuth(), "okta"), "1001")
	const n = 6
	results := make(chan int, n)
	start := make(chan struct{})
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, back.String(), nil)
			for _, c := range br.c.Jar.Cookies(back) {
				req.AddCookie(c)
			}
			<-start
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	close(start)
	var got []int
	for range n {
		got = append(got, <-results)
	}
	slices.Sort(got)
	want := []int{http.StatusSeeOther}
	for range n - 1 {
		want = append(want, http.StatusBadRequest)
	}
	if !slices.Equal(got, want) {
		t.Errorf("statuses %v, want one redirect and %d refusals", got, n-1)
	}
	if r := redemptions.Load(); r != 1 {
		t.Errorf("the upstream code was redeemed %d times, want once", r)
	}
}

// TestLinkByEmail: a first federated login through a connector trusted
// for e-mail joins the existing user at once only when linking is on, both
// sides have the address verified and the user has no password; a user
// with a password is joined only after its owner proves control (the link
// page, TestPreRegistrationTakeover); otherwise a new user is made,
// without taking the address.
func TestLinkByEmail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		for _, tc := range []struct {
			name     string
			link     bool
			verified bool
			password bool
			subject  string // fakeidp: 1001 alice (verified), 1003 carol (unverified)
			email    string
			want     string // "linked", "new" or "ask"
		}{
			{"on, both verified", true, true, false, "1001", "alice@example.com", "linked"},
			{"on, both verified, user has a password", true, true, true, "1001", "alice@example.com", "ask"},
			{"off", false, true, false, "1001", "alice@example.com", "new"},
			{"off, user has a password", false, true, true, "1001", "alice@example.com", "new"},
			{"on, user unverified", true, false, false, "1001", "alice@example.com", "new"},
			{"on, upstream unverified", true, true, false, "1003", "carol@example.net", "new"},
			{"on, upstream unverified, user has a password", true, true, true, "1003", "carol@example.net", "new"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newEnv(t, envOptions{backend: b, linkByEmail: tc.link, connectors: func(e *env) []config.Connector {
					return []config.Connector{e.oktaConnector("okta")}
				}})
				existing := &storage.User{ID: "u_existing", Email: tc.email, EmailVerified: tc.verified, Name: "Existing", Active: true}
				if tc.password {
					existing = e.createLocalUser(tc.email, tc.verified)
				} else if err := e.store.CreateUser(ctx, existing); err != nil {
					t.Fatal(err)
				}
				ar := spaAuth()
				p := e.upstreamCallback(e.browser(), ar, "okta", tc.subject)
				if tc.want == "ask" {
					if !isLinkPage(p) {
						t.Fatalf("no link page: %d %.800s", p.status, p.body)
					}
					if _, err := e.store.GetIdentity(ctx, "okta", tc.subject); err == nil {
						t.Error("the identity was linked before its owner proved control")
					}
					return
				}
				claims := e.idClaims(e.exchange(codeFrom(t, p), ar).IDToken)
				checkFederated(t, claims, "okta")
				if linked := claims["sub"] == existing.ID; linked != (tc.want == "linked") {
					t.Fatalf("sub = %v, existing user %s: linked %v, want %s", claims["sub"], existing.ID, linked, tc.want)
				}
				if tc.want == "linked" {
					return
				}
				u, err := e.store.GetUser(ctx, claims["sub"].(string))
				if err != nil {
					t.Fatal(err)
				}
				if u.Email != "" {
					t.Errorf("the new user took the address %q of the existing user", u.Email)
				}
				// The existing account is untouched.
				l, err := e.store.GetUserByEmail(ctx, tc.email)
				if err != nil || l.ID != existing.ID || l.Name != existing.Name {
					t.Errorf("existing user now %+v, %v", l, err)
				}
			})
		}
	})
}

// TestUnverifiedEmailNotClaimed: a new user gets the upstream's e-mail
// address only when the upstream says it is verified.
func TestUnverifiedEmailNotClaimed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{connectors: oktaOnly})
	for _, tc := range []struct {
		subject, email string
		claimed        bool
	}{{"1003", "carol@example.net", false}, {"1002", "bob@example.org", true}} {
		claims, _ := e.login(e.browser(), "okta", tc.subject)
		u, err := e.store.GetUser(ctx, claims["sub"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if claimed := u.Email == tc.email && u.EmailVerified; claimed != tc.claimed || (!claimed && u.Email != "") {
			t.Errorf("%s: user e-mail %q verified %v, want claimed=%v", tc.subject, u.Email, u.EmailVerified, tc.claimed)
		}
		if link, err := e.store.GetIdentity(ctx, "okta", tc.subject); err != nil || link.Email != tc.email {
			t.Errorf("%s: identity %+v, %v", tc.subject, link, err)
		}
	}
}

// TestRefreshRevokedUpstream: Refresh re-checks the user at Okta, saves the
// rotated upstream refresh token, and reports a user disabled upstream.
func TestRefreshRevokedUpstream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, envOptions{backend: b})
		claims, _ := e.login(e.browser(), "okta", "1002")
		userID := claims["sub"].(string)
		before, err := e.store.GetIdentity(ctx, "okta", "1002")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.fed.Refresh(ctx, userID, "okta"); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		after, err := e.store.GetIdentity(ctx, "okta", "1002")
		if err != nil {
			t.Fatal(err)
		}
		beforeData, err := federation.OpenConnectorData(e.fed, before)
		if err != nil {
			t.Fatal(err)
		}
		afterData, err := federation.OpenConnectorData(e.fed, after)
		if err != nil {
			t.Fatal(err)
		}
		if string(afterData) == string(beforeData) {
			t.Error("the rotated upstream refresh token was not saved")
		}
		if err := e.fed.Refresh(ctx, userID, "local"); err != nil {
			t.Errorf("Refresh of a local login: %v", err)
		}
		if err := e.idp.SetUserDisabled("1002", true); err != nil {
			t.Fatal(err)
		}
		if err := e.fed.Refresh(ctx, userID, "okta"); !errors.Is(err, connectors.ErrIdentityRevoked) {
			t.Errorf("Refresh of a user disabled upstream: %v, want ErrIdentityRevoked", err)
		}
		// A user without the identity (unlinked) is revoked too.
		if err := e.fed.Refresh(ctx, "u_nobody", "okta"); !errors.Is(err, connectors.ErrIdentityRevoked) {
			t.Errorf("Refresh without an identity: %v", err)
		}
	})
}
