package broker

import (
	"net/http"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestPageSecurityHeaders backs SECURITY.md (RFC 9700 §4.2, §4.12, §4.16):
// pages send no Referer onwards and cannot be framed, and the answer to
// the login POST is a 303, which browsers follow with a GET (a 307 would
// resend the password to the client).
func TestPageSecurityHeaders(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	br := e.browser()
	p := br.get(e.authURL(spaAuth()))
	if p.status != http.StatusOK {
		t.Fatalf("login page: %d", p.status)
	}
	for name, want := range map[string]string{
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "frame-ancestors 'none'",
	} {
		if got := p.header.Get(name); !strings.Contains(got, want) {
			t.Errorf("login page %s = %q, want %q", name, got, want)
		}
	}
	r := br.submitLogin(p, userEmail, userPassword)
	if r.status != http.StatusSeeOther {
		t.Fatalf("login POST answered %d, want 303", r.status)
	}
	redirectParams(t, r, spaRedirect)
}
