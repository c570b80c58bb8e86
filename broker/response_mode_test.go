package broker

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// formPostParams returns the fields of a response_mode=form_post page,
// checking it carries the security headers of every broker page.
func formPostParams(t *testing.T, p page) url.Values {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, "<form") {
		t.Fatalf("want a form_post page, got %d: %.300s", p.status, p.body)
	}
	h := p.header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("form_post page CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") && strings.Contains(csp, "script-src 'unsafe-inline'") {
		t.Errorf("form_post page CSP allows any inline script: %q", csp)
	}
	for name, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("form_post page %s = %q, want %q", name, got, want)
		}
	}
	if n := len(h.Values("Content-Type")); n != 1 {
		t.Errorf("form_post page has %d Content-Type headers", n)
	}
	v := url.Values{}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(p.body, -1) {
		v.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// fragmentParams returns the fragment of a redirect to the client,
// checking the query carries nothing the broker added.
func fragmentParams(t *testing.T, p page, wantPrefix string) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("want a redirect, got %d: %.300s", p.status, p.body)
	}
	loc := p.header.Get("Location")
	base, frag, ok := strings.Cut(loc, "#")
	if !ok || base != wantPrefix {
		t.Fatalf("redirect to %q, want %s#…", loc, wantPrefix)
	}
	v, err := url.ParseQuery(frag)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestResponseModes backs SECURITY.md (RFC 9207, RFC 9700 §4.4, §4.16):
// the response modes discovery lists (query, fragment, form_post) all
// carry iss where the client reads the answer, and the form_post page,
// success or error, carries the same CSP and frame protection as every
// broker page.
func TestResponseModes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)

		// Errors (no session, prompt=none).
		q := formPostParams(t, e.browser().get(e.authURL(spaAuth("prompt", "none", "response_mode", "form_post"))))
		if q.Get("error") != "login_required" || q.Get("state") != testState || q.Get("iss") != e.issuer {
			t.Errorf("form_post error: %v, want login_required, state and iss", q)
		}
		q = fragmentParams(t, e.browser().get(e.authURL(spaAuth("prompt", "none", "response_mode", "fragment"))), spaRedirect)
		if q.Get("error") != "login_required" || q.Get("state") != testState || q.Get("iss") != e.issuer {
			t.Errorf("fragment error: %v, want login_required, state and iss", q)
		}

		// Codes.
		br := e.browser()
		ar := spaAuth("response_mode", "form_post")
		p := br.get(e.authURL(ar))
		q = formPostParams(t, br.submitLogin(p, userEmail, userPassword))
		if q.Get("code") == "" || q.Get("state") != testState || q.Get("iss") != e.issuer || len(q["iss"]) != 1 {
			t.Errorf("form_post code: %v, want code, state and one iss", q)
		}
		mustOK(t, e.exchange(q.Get("code"), ar))
		ar = spaAuth("response_mode", "fragment")
		q = fragmentParams(t, br.get(e.authURL(ar)), spaRedirect)
		if q.Get("code") == "" || q.Get("state") != testState || q.Get("iss") != e.issuer || len(q["iss"]) != 1 {
			t.Errorf("fragment code: %v, want code, state and one iss", q)
		}
		mustOK(t, e.exchange(q.Get("code"), ar))
		q = redirectParams(t, br.get(e.authURL(spaAuth("response_mode", "query"))), spaRedirect)
		if q.Get("code") == "" || len(q["iss"]) != 1 || q.Get("iss") != e.issuer {
			t.Errorf("query code: %v, want code and one iss", q)
		}
	})
}

// TestPromptValues backs docs/broker.md: discovery lists exactly the
// prompt values and response modes the broker honours; consent and
// select_account, which it has no page for, are refused with OpenID
// Connect's errors rather than ignored.
func TestPromptValues(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	resp, err := http.Get(e.issuer + pathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Prompts []string `json:"prompt_values_supported"`
		Modes   []string `json:"response_modes_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(doc.Prompts)
	slices.Sort(doc.Modes)
	if !slices.Equal(doc.Prompts, []string{"login", "none"}) || !slices.Equal(doc.Modes, []string{"form_post", "fragment", "query"}) {
		t.Errorf("discovery: prompt values %v, response modes %v", doc.Prompts, doc.Modes)
	}

	br := e.browser()
	br.loginForCode(spaAuth()) // a session, which an ignored prompt would use
	for prompt, want := range map[string]string{
		"consent":              "consent_required",
		"select_account":       "account_selection_required",
		"login consent":        "consent_required",
		"select_account login": "account_selection_required",
	} {
		q := redirectParams(t, br.get(e.authURL(spaAuth("prompt", prompt))), spaRedirect)
		if q.Get("error") != want || q.Get("code") != "" || q.Get("state") != testState {
			t.Errorf("prompt=%s: %v, want error %s", prompt, q, want)
		}
	}
	if p := br.get(e.authURL(spaAuth("response_mode", "web_message"))); p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
		t.Errorf("response_mode=web_message: %d %q, want the error page", p.status, p.header.Get("Location"))
	}
}
