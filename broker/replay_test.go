package broker

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// signatureHalf is what a log line or a proxy may keep of an opaque token:
// its signature part after the last '.', behind a made-up key part.
func signatureHalf(token string) string {
	return "forged-key-part." + token[strings.LastIndexByte(token, '.')+1:]
}

// victimGrant is the SPA's grant after one refresh: the redeemed code, the
// rotated first refresh token and the current tokens.
type victimGrant struct {
	code, spentRefresh string
	current            tokenResponse
}

func newVictimGrant(t *testing.T, e *testEnv) victimGrant {
	t.Helper()
	ar := spaAuth()
	code := e.browser().loginForCode(ar)
	first := mustOK(t, e.exchange(code, ar))
	second := mustOK(t, e.refresh(first.RefreshToken))
	return victimGrant{code: code, spentRefresh: first.RefreshToken, current: second}
}

// stillWorks checks that the victim's current tokens are active and that its
// refresh token still refreshes; it returns the refreshed grant.
func (v victimGrant) stillWorks(t *testing.T, e *testEnv, after string) victimGrant {
	t.Helper()
	if !e.active(v.current.AccessToken) || !e.active(v.current.RefreshToken) {
		t.Fatalf("after %s: the victim's tokens were revoked", after)
	}
	next := e.refresh(v.current.RefreshToken)
	if next.status != http.StatusOK {
		t.Fatalf("after %s: the victim's refresh token no longer refreshes: %d %s %s", after, next.status, next.Error, next.Description)
	}
	v.spentRefresh, v.current = v.current.RefreshToken, next
	return v
}

// TestReplayRevokesOnlyForItsClient: a spent code or rotated refresh token
// revokes its grant only when it is authentic and presented by the client
// it was issued to. Another client (a registered confidential one, or a
// caller naming a public client) holding the whole token or only its
// signature half gets invalid_grant, and the victim's grant lives on.
func TestReplayRevokesOnlyForItsClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, func(c *Config) { c.RefreshReuseGrace = -1 }) // every reuse counts
		v := newVictimGrant(t, e)

		type attack struct {
			name       string
			form       url.Values
			user, pass string
		}
		attacks := func(v victimGrant) []attack {
			return []attack{
				{"another client presents the rotated refresh token",
					url.Values{"grant_type": {"refresh_token"}, "refresh_token": {v.spentRefresh}}, webID, webSecret},
				{"the signature half of the rotated refresh token as the SPA",
					url.Values{"grant_type": {"refresh_token"}, "refresh_token": {signatureHalf(v.spentRefresh)}, "client_id": {spaID}}, "", ""},
				{"the signature half of the rotated refresh token as another client",
					url.Values{"grant_type": {"refresh_token"}, "refresh_token": {signatureHalf(v.spentRefresh)}}, webID, webSecret},
				{"another client presents the redeemed code",
					url.Values{"grant_type": {"authorization_code"}, "code": {v.code}, "redirect_uri": {spaRedirect}}, webID, webSecret},
				{"the signature half of the redeemed code as the SPA",
					url.Values{"grant_type": {"authorization_code"}, "code": {signatureHalf(v.code)}, "redirect_uri": {spaRedirect},
						"client_id": {spaID}, "code_verifier": {newVerifier()}}, "", ""},
				{"the signature half of the redeemed code as another client",
					url.Values{"grant_type": {"authorization_code"}, "code": {signatureHalf(v.code)}, "redirect_uri": {spaRedirect}}, webID, webSecret},
			}
		}
		for i := range attacks(v) {
			v := newVictimGrant(t, e) // each attack on a grant of its own
			a := attacks(v)[i]
			t.Run(a.name, func(t *testing.T) {
				tr := e.token(a.form, a.user, a.pass)
				wantTokenError(t, tr, http.StatusBadRequest, "invalid_grant")
				want := "malformed or not valid"
				if !strings.Contains(a.name, "signature half") {
					want = "not issued to this client"
				}
				if !strings.Contains(tr.Description, want) {
					t.Errorf("description %q does not say %q", tr.Description, want)
				}
				v.stillWorks(t, e, a.name)
			})
		}
		t.Run("the signature half of the live refresh token", func(t *testing.T) {
			v := newVictimGrant(t, e)
			wantTokenError(t, e.refresh(signatureHalf(v.current.RefreshToken)), http.StatusBadRequest, "invalid_grant")
			v.stillWorks(t, e, "the signature half of the live refresh token")
		})

		// Revocation (RFC 7009): another client cannot revoke the grant with
		// the whole token, and nobody can with only its signature half (an
		// invalid token answers 200 and revokes nothing).
		t.Run("revocation by another client", func(t *testing.T) {
			v := newVictimGrant(t, e)
			for _, name := range []string{"refresh token", "access token"} {
				form := url.Values{"token": {v.current.RefreshToken}}
				if name == "access token" {
					form = url.Values{"token": {v.current.AccessToken}, "token_type_hint": {"access_token"}}
				}
				resp, body := e.post(pathRevoke, form, webID, webSecret)
				if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"unauthorized_client"`) {
					t.Errorf("another client revoking the SPA's %s: %d %s, want 400 unauthorized_client", name, resp.StatusCode, body)
				}
				v = v.stillWorks(t, e, "another client revoking the "+name)
			}
		})
		t.Run("revocation with a signature half", func(t *testing.T) {
			v := newVictimGrant(t, e)
			at := v.current.AccessToken
			for name, tok := range map[string]string{
				"refresh token": signatureHalf(v.current.RefreshToken),
				"access token":  "eyJhbGciOiJSUzI1NiJ9.e30." + at[strings.LastIndexByte(at, '.')+1:],
			} {
				resp, body := e.post(pathRevoke, url.Values{"token": {tok}, "client_id": {spaID}}, "", "")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("revoking the signature half of a %s: %d %s, want 200 (an invalid token)", name, resp.StatusCode, body)
				}
				if !e.active(v.current.AccessToken) || !e.active(v.current.RefreshToken) {
					t.Errorf("the signature half of the %s revoked the grant", name)
				}
			}
		})

		// The client the tokens were issued to, presenting them whole, still
		// triggers replay revocation.
		wantTokenError(t, e.refresh(v.spentRefresh), http.StatusBadRequest, "invalid_grant")
		if e.active(v.current.RefreshToken) || e.active(v.current.AccessToken) {
			t.Fatal("a replay by the token's own client did not revoke the grant")
		}
		w := newVictimGrant(t, e)
		ar := spaAuth()
		wantTokenError(t, e.token(url.Values{"grant_type": {"authorization_code"}, "code": {w.code}, "redirect_uri": {spaRedirect},
			"client_id": {spaID}, "code_verifier": {ar.verifier}}, "", ""), http.StatusBadRequest, "invalid_grant")
		if e.active(w.current.RefreshToken) || e.active(w.current.AccessToken) {
			t.Fatal("a code replay by the code's own client did not revoke the grant")
		}
	})
}

// TestConcurrentRefreshKeepsTheWinner: two (or more) requests redeeming one
// refresh token at the same moment — tabs of one browser — get exactly one
// winner, and the winner's new tokens keep working whatever order the
// losers arrive in (with the default reuse grace).
func TestConcurrentRefreshKeepsTheWinner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil) // the default grace
		ar := spaAuth()
		cur := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		for round := range 6 {
			n := 2 + round%3
			results := make([]tokenResponse, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					if i > 0 && round%2 == 1 {
						// a loser that arrives just after the winner
						time.Sleep(time.Duration(i) * 15 * time.Millisecond)
					}
					results[i] = e.refresh(cur.RefreshToken)
				})
			}
			close(start)
			wg.Wait()
			var winner *tokenResponse
			for i, r := range results {
				switch {
				case r.status == http.StatusOK:
					if winner != nil {
						t.Fatalf("round %d: two of %d concurrent refreshes succeeded", round, n)
					}
					winner = &results[i]
				case r.status != http.StatusBadRequest || r.Error != "invalid_grant":
					t.Errorf("round %d: loser got %d %s: %s", round, r.status, r.Error, r.Description)
				}
			}
			if winner == nil {
				t.Fatalf("round %d: none of %d concurrent refreshes succeeded", round, n)
			}
			if !e.active(winner.AccessToken) || !e.active(winner.RefreshToken) {
				t.Fatalf("round %d: a loser revoked the winner's new tokens", round)
			}
			cur = mustOK(t, e.refresh(winner.RefreshToken)) // the winner's token keeps working
		}
	})
}

// TestRefreshReuseGraceWindow: within the grace window a second use is
// refused without revoking anything; after it, reuse revokes the family.
func TestRefreshReuseGraceWindow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		const grace = 400 * time.Millisecond
		e := newTestEnv(t, b, func(c *Config) { c.RefreshReuseGrace = grace })
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		second := mustOK(t, e.refresh(first.RefreshToken))
		// Within the window: refused, nothing revoked.
		loser := e.refresh(first.RefreshToken)
		wantTokenError(t, loser, http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(loser.Description, "used a moment ago by another request") {
			t.Errorf("a reuse within the window: %q does not say what happened", loser.Description)
		}
		if !e.active(second.RefreshToken) || !e.active(second.AccessToken) {
			t.Fatal("reuse within the grace window revoked the grant")
		}
		// Another client replaying it within the window changes nothing either.
		wantTokenError(t, e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, webID, webSecret),
			http.StatusBadRequest, "invalid_grant")
		time.Sleep(grace + 100*time.Millisecond)
		// After it: the whole family is revoked.
		wantTokenError(t, e.refresh(first.RefreshToken), http.StatusBadRequest, "invalid_grant")
		if e.active(second.RefreshToken) || e.active(second.AccessToken) || e.active(first.AccessToken) {
			t.Fatal("reuse after the grace window did not revoke the grant")
		}
		wantTokenError(t, e.refresh(second.RefreshToken), http.StatusBadRequest, "invalid_grant")
	})
}
