package federation_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
)

// amrOf is the amr claim of an ID token's claims as strings.
func amrOf(claims map[string]any) []string {
	var out []string
	list, _ := claims["amr"].([]any)
	for _, v := range list {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// TestUpstreamAMR logs in through the connector-oidc plugin process at the
// fake upstream: a user the upstream reports with amr ["pwd", "mfa"] gets
// an ID token with amr [fed pwd mfa] and acr mfa, and satisfies a client
// registered with --require-mfa and acr_values asking for mfa; a user the
// upstream reports no amr for gets amr [fed] and acr pwd, and the client
// requiring MFA is answered access_denied (never a code), also when the
// session is reused silently.
func TestUpstreamAMR(t *testing.T) {
	e := newEnv(t, envOptions{connectors: oktaOnly})
	ctx := context.Background()
	if err := e.idp.SetUserAMR("1001", []string{"pwd", "mfa"}); err != nil {
		t.Fatal(err)
	}

	// Alice: the upstream reports a second factor.
	b := e.browser()
	claims, _ := e.login(b, "okta", "1001")
	if got := amrOf(claims); !slices.Equal(got, []string{"fed", "pwd", "mfa"}) {
		t.Errorf("amr = %q, want [fed pwd mfa]", got)
	}
	if claims["acr"] != mfa.ACRMFA {
		t.Errorf("acr = %v, want %s", claims["acr"], mfa.ACRMFA)
	}
	// acr_values asking for mfa: the session satisfies it silently.
	ar := spaAuth("acr_values", mfa.ACRMFA)
	tr := e.exchange(codeFrom(t, b.get(e.authURL(ar))), ar)
	if c := e.idClaims(tr.IDToken); c["acr"] != mfa.ACRMFA {
		t.Errorf("acr_values mfa on the upstream's mfa session: acr %v", c["acr"])
	}

	// Bob: the upstream says nothing of how he signed in.
	bob := e.browser()
	claims, _ = e.login(bob, "okta", "1002")
	checkFederated(t, claims, "okta")
	if claims["acr"] != mfa.ACRPassword {
		t.Errorf("acr = %v, want %s", claims["acr"], mfa.ACRPassword)
	}
	// acr_values is a wish: answered, with the acr that was done.
	ar = spaAuth("acr_values", mfa.ACRMFA)
	tr = e.exchange(codeFrom(t, bob.get(e.authURL(ar))), ar)
	if c := e.idClaims(tr.IDToken); c["acr"] != mfa.ACRPassword {
		t.Errorf("acr_values mfa on a password session: acr %v, want %s", c["acr"], mfa.ACRPassword)
	}

	// The client now requires MFA (client update --require-mfa).
	c, err := e.store.LookupClient(ctx, spaID)
	if err != nil {
		t.Fatal(err)
	}
	c.RequireMFA = true
	if err := e.store.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Alice's session passes.
	ar = spaAuth()
	tr = e.exchange(codeFrom(t, b.get(e.authURL(ar))), ar)
	if c := e.idClaims(tr.IDToken); c["acr"] != mfa.ACRMFA {
		t.Errorf("require-mfa client, upstream mfa: acr %v", c["acr"])
	}
	// Bob's reused session, and a new upstream login of his, are refused.
	denied := func(what string, p page) {
		t.Helper()
		if p.status != http.StatusSeeOther && p.status != http.StatusFound {
			t.Fatalf("%s: %d at %s: %.800s", what, p.status, p.url, p.body)
		}
		q := p.location(t).Query()
		if q.Get("error") != "access_denied" || q.Get("code") != "" || !strings.Contains(q.Get("error_description"), "second factor") {
			t.Errorf("%s: answered %s, want access_denied without a code", what, p.location(t).RawQuery)
		}
	}
	denied("reused session", bob.get(e.authURL(spaAuth())))
	fresh := e.browser()
	ar = spaAuth()
	denied("new upstream login", fresh.get(e.upstreamLogin(e.startUpstream(fresh, ar, "okta"), "1002").String()))
	if !e.logs.contains("login refused: the client requires a second factor") {
		t.Error("the refusal is not logged")
	}
}
