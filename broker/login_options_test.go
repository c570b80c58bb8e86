package broker

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestCompleteLoginFromAnotherHandler plays a connector: a login option on
// the login page, idp_hint, a route of its own and CompleteLogin.
func TestCompleteLoginFromAnotherHandler(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		var e *testEnv
		e = newTestEnv(t, b, func(c *Config) {
			c.LoginOptions = []LoginOption{{ID: "fake", Label: "Fake IdP", URL: func(id string) string {
				return c.Issuer + "/connector/fake?login=" + url.QueryEscape(id)
			}}}
			c.LoginLinks = []LoginLink{{Label: "Create account", Href: "/register", WithLogin: true}}
			mount("/connector/fake", func(w http.ResponseWriter, r *http.Request) {
				id := r.URL.Query().Get("login")
				if _, err := e.srv.PendingLogin(r, id); err != nil {
					http.Error(w, "no pending login", http.StatusBadRequest)
					return
				}
				e.srv.CompleteLogin(w, r, id, e.user.ID, "fake", []string{"fed"})
			})(c)
		})

		br := e.browser()
		p := br.get(e.authURL(spaAuth()))
		if !strings.Contains(p.body, "Continue with Fake IdP") || !strings.Contains(p.body, `/register?login=`) {
			t.Fatalf("login page lacks the connector button or the link: %.2000s", p.body)
		}
		// idp_hint skips the login page.
		ar := spaAuth("idp_hint", "fake")
		q := redirectParams(t, br.get(e.authURL(ar)), spaRedirect)
		tr := mustOK(t, e.exchange(q.Get("code"), ar))
		_, id := e.verifyJWT(tr.IDToken)
		if id["idp"] != "fake" {
			t.Errorf("idp %v", id["idp"])
		}
		if amr, _ := id["amr"].([]any); len(amr) != 1 || amr[0] != "fed" {
			t.Errorf("amr %v", id["amr"])
		}
		// Another browser cannot complete this browser's login.
		p = br.get(e.authURL(spaAuth("prompt", "login")))
		other := e.browser()
		r := other.get(e.issuer + "/connector/fake?login=" + url.QueryEscape(loginID(t, p)))
		if r.status != http.StatusBadRequest {
			t.Errorf("foreign browser completed the login: %d", r.status)
		}
	})
}
