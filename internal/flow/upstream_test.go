package flow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A broker that answers the upstream login with an error redirect (as it
// does with temporarily_unavailable while its database restarts) is
// reported with that error, not as a login that skipped the upstream.
func TestLoginUpstreamReportsErrorRedirect(t *testing.T) {
	const redirect = "http://127.0.0.1:1/callback"
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirect+"?error=temporarily_unavailable&error_description=try+again&state="+r.URL.Query().Get("state"), http.StatusSeeOther)
	}))
	defer broker.Close()
	c := New("app", redirect, nil)
	_, err := c.LoginUpstream(context.Background(), broker.URL, "okta", func(context.Context, string) (string, error) {
		t.Error("the upstream was asked")
		return "", nil
	})
	if err == nil || !strings.Contains(err.Error(), "authorization error temporarily_unavailable: try again") {
		t.Errorf("LoginUpstream = %v, want the authorization error", err)
	}
}
