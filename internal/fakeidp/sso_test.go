package fakeidp

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSingleSignOn: a browser that signed in is sent back without the
// login page, unless prompt=login, a max_age older than the sign-in or
// (Facebook) auth_type=reauthenticate asks for a new one; prompt=none
// without a session is login_required; a disabled user's session is dead.
func TestSingleSignOn(t *testing.T) {
	s, base := start(t)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authURL := func(path string, extra ...string) string {
		q := url.Values{"client_id": {testClient}, "redirect_uri": {testRedirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"st"}}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Set(extra[i], extra[i+1])
		}
		return base + path + "?" + q.Encode()
	}
	okta := "/oauth2/default/v1/authorize"
	get := func(u string) *http.Response {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	redirected := func(resp *http.Response, param string) bool {
		loc, err := resp.Location()
		return err == nil && strings.HasPrefix(loc.String(), testRedirect) && loc.Query().Get(param) != ""
	}

	if resp := get(authURL(okta, "prompt", "none")); !redirected(resp, "error") {
		t.Fatalf("prompt=none without a session: %d", resp.StatusCode)
	} else if loc, _ := resp.Location(); loc.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none without a session: %s", loc.RawQuery)
	}
	if resp := get(authURL(okta)); resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d", resp.StatusCode)
	}
	form, _ := url.ParseQuery(strings.SplitN(authURL(okta), "?", 2)[1])
	form.Set("subject", "1002")
	resp, err := browser.PostForm(base+okta, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !redirected(resp, "code") {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	time.Sleep(1100 * time.Millisecond)
	for _, c := range []struct {
		path  string
		extra []string
		// silent: sent back with a code, without the login page
		silent bool
	}{
		{okta, nil, true},
		{okta, []string{"prompt", "none"}, true},
		{okta, []string{"max_age", "3600"}, true},
		{okta, []string{"prompt", "login"}, false},
		{okta, []string{"max_age", "0"}, false},
		{"/o/oauth2/v2/auth", []string{"max_age", "0"}, false},
		{"/dialog/oauth", nil, true},
		{"/dialog/oauth", []string{"auth_type", "reauthenticate"}, false},
	} {
		resp := get(authURL(c.path, c.extra...))
		if silent := redirected(resp, "code"); silent != c.silent {
			t.Errorf("%s %v: silent sign-in %v, want %v (%d)", c.path, c.extra, silent, c.silent, resp.StatusCode)
		}
	}
	if err := s.SetUserDisabled("1002", true); err != nil {
		t.Fatal(err)
	}
	if resp := get(authURL(okta)); resp.StatusCode != http.StatusOK {
		t.Errorf("a disabled user's session signed them in: %d", resp.StatusCode)
	}
}
