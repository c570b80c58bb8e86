package federation_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
)

// testConnectorWithTimeout is the SDK's test plugin as connector "test"
// with a short call timeout.
func testConnectorWithTimeout(d time.Duration) func(e *env) []config.Connector {
	return func(e *env) []config.Connector {
		cs := testConnectorOnly(e)
		cs[0].CallTimeout = d
		return cs
	}
}

// A LoginURL that hangs on an idp_hint login costs the user one call
// timeout, not two (the start at the authorization request, then /connect
// trying again), and ends on the timeout page.
func TestIDPHintHangingLoginURLCostsOneTimeout(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	e := newEnv(t, envOptions{connectors: testConnectorWithTimeout(timeout)})
	br := e.browser()
	ar := spaAuth("idp_hint", "test", "login_hint", "hang")
	start := time.Now()
	p := br.get(e.authURL(ar))
	took := time.Since(start)
	errorPage(t, br, e, p, http.StatusGatewayTimeout, "took too long to answer")
	if took >= 2*timeout {
		t.Errorf("the user waited %s: two call timeouts of %s", took, timeout)
	}
	// The page offers the way back, and going there starts afresh.
	var retry string
	for _, h := range hrefs(p.body) {
		if strings.Contains(h, "/login?login=") {
			retry = h
		}
	}
	if retry == "" {
		t.Fatalf("no way back to the login page: %s", p.body)
	}
	if lp := br.get(retry); lp.status != http.StatusOK || !strings.Contains(lp.body, "Continue with Test") {
		t.Errorf("retry link: %d %.500s", lp.status, lp.body)
	}
}

// Only an absolute http(s) URL from a connector's LoginURL becomes the
// browser's redirect: a javascript: or relative URL gets an error page,
// through idp_hint and through the login page's button alike.
func TestLoginURLThatIsNotAWebURLNeverLeaves(t *testing.T) {
	e := newEnv(t, envOptions{connectors: testConnectorOnly})
	for _, hint := range []string{"javascript", "relative"} {
		br := e.browser()
		ar := spaAuth("idp_hint", "test", "login_hint", hint)
		p := br.get(e.authURL(ar))
		if loc := p.header.Get("Location"); loc != "" {
			if u, err := url.Parse(loc); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host != e.ts.Listener.Addr().String() {
				t.Errorf("%s: the broker redirected to %q", hint, loc)
				continue
			}
		}
		errorPage(t, br, e, p, http.StatusBadGateway, "Signing in with Test did not work")
	}
}

// What the person signing in sees of a connector's error is the
// connector's user message, never its error text: a policy refusal whose
// text holds an access token shows the broker's own words only.
func TestConnectorErrorTextNeverReachesTheUser(t *testing.T) {
	e := newEnv(t, envOptions{connectors: testConnectorOnly})
	callback := func(code string) page {
		br := e.browser()
		up := e.startUpstream(br, spaAuth(), "test")
		cb := e.issuer + "/callback/test?" + url.Values{"code": {code}, "state": {up.Query().Get("state")}}.Encode()
		p := br.get(cb)
		errorPage(t, br, e, p, http.StatusForbidden, "Your Test account cannot be used to sign in here.")
		if strings.Contains(p.body, "SECRET") || strings.Contains(p.body, "access_token") {
			t.Errorf("code %s: the page shows the connector's error text: %s", code, p.body)
		}
		return p
	}
	for _, code := range []string{"policy-secret", "no-email", "policy-bad-message"} {
		if p := callback(code); strings.Contains(p.body, "no e-mail") || strings.Contains(p.body, "line one") {
			t.Errorf("code %s: the page shows connector text: %s", code, p.body)
		}
	}
	if p := callback("policy-message"); !strings.Contains(p.body, "Sign in with your example.test work account.") {
		t.Errorf("the connector's user message is missing: %s", p.body)
	}
	// The error text is in the log, for the operator.
	if !e.logs.contains("SECRET-at-123") {
		t.Error("the connector's error text is not in the broker's log")
	}
}

// contains reports whether any logged record's message or attribute
// values hold s.
func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		found := strings.Contains(r.Message, sub)
		r.Attrs(func(a slog.Attr) bool {
			found = found || strings.Contains(a.Value.String(), sub)
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// A connector's Refresh that answers for another subject ends the grant,
// as IDENTITY_REVOKED does (docs/plugins.md, "Refresh replaces").
func TestRefreshForAnotherSubjectEndsTheGrant(t *testing.T) {
	e := newEnv(t, envOptions{connectors: testConnectorOnly, brokerConfig: func(e *env, c *broker.Config) {
		c.RefreshCheck = func(ctx context.Context, userID, idp string) error { return e.fed.Refresh(ctx, userID, idp) }
	}})
	login := func(code string) tokens {
		br := e.browser()
		ar := spaAuth()
		up := e.startUpstream(br, ar, "test")
		cb := e.issuer + "/callback/test?" + url.Values{"code": {code}, "state": {up.Query().Get("state")}}.Encode()
		return e.exchange(codeFrom(t, br.get(cb)), ar)
	}
	if r := e.refresh(login("ann").RefreshToken); r.status != http.StatusOK {
		t.Fatalf("refresh of a user the connector vouches for: %d %q", r.status, r.Error)
	}
	if r := e.refresh(login("other-subject").RefreshToken); r.status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("refresh answered for another subject: %d %q, want 400 invalid_grant", r.status, r.Error)
	}
}
