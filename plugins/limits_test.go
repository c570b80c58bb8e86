package plugins

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// TestHostileReplies launches the hostile test plugin (built with the SDK)
// and has it break every reply limit: each answer is refused with
// ErrPluginFailed naming the field and its limit, and the same plugin
// process goes on serving honest answers.
func TestHostileReplies(t *testing.T) {
	ctx := testContext(t)
	p, _ := launchTest(t, func(c *Config) {
		c.Path = hostileConnector(t)
		c.Config = []byte(`{"issuer":"https://hostile-idp.test"}`)
	})
	limit := func(n int) string { return "limit of " + strconv.Itoa(n) }
	refused := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if !errors.Is(err, ErrPluginFailed) {
			t.Fatalf("error %v, want ErrPluginFailed", err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}

	for _, tc := range []struct{ hint, field, limit string }{
		{"huge-state", "reply", limit(MaxReplyBytes)},
		{"long-state", "connector_state", limit(MaxConnectorStateBytes)},
		{"long-url", "url", limit(MaxLoginURLBytes)},
	} {
		t.Run("LoginURL "+tc.hint, func(t *testing.T) {
			resp, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", CallbackURL: "https://broker.test/cb", LoginHint: tc.hint})
			refused(t, err, tc.field, tc.limit, "LoginURL")
			if resp.URL != "" || resp.ConnectorState != nil {
				t.Errorf("a refused answer came back: %d bytes of state", len(resp.ConnectorState))
			}
		})
	}
	callback := func(code string) (connectors.Identity, error) {
		return p.Connector().HandleCallback(ctx, connectors.CallbackRequest{ConnectorState: []byte("ok"), CallbackURL: "https://broker.test/cb", Query: url.Values{"code": {code}}})
	}
	for _, tc := range []struct{ code, field, limit string }{
		{"huge", "reply", limit(MaxReplyBytes)},
		{"long-subject", "subject", limit(MaxSubjectBytes)},
		{"long-email", "email", limit(MaxEmailBytes)},
		{"long-name", "name", limit(MaxNameBytes)},
		{"long-given-name", "given_name", limit(MaxNameBytes)},
		{"long-family-name", "family_name", limit(MaxNameBytes)},
		{"long-picture", "picture", limit(MaxPictureBytes)},
		{"many-groups", "groups", limit(MaxGroups)},
		{"long-group", "groups[1]", limit(MaxGroupBytes)},
		{"long-claims", "claims_json", limit(MaxClaimsJSONBytes)},
		{"long-data", "connector_data", limit(MaxConnectorDataBytes)},
		{"nul-name", "name", "NUL"},
		{"many-amr", "amr", limit(MaxAMR)},
		{"long-amr", "amr[1]", limit(MaxAMRValueBytes)},
		{"odd-amr", "amr[1]", "not a token character"},
		{"empty-amr", "amr[1]", "empty"},
	} {
		t.Run("HandleCallback "+tc.code, func(t *testing.T) {
			id, err := callback(tc.code)
			refused(t, err, tc.field, tc.limit, "HandleCallback")
			if id.Subject != "" || id.ConnectorData != nil {
				t.Errorf("a refused identity came back: %q, %d bytes of data", id.Subject, len(id.ConnectorData))
			}
		})
	}
	t.Run("HandleCallback long-error", func(t *testing.T) {
		// A 1 MiB error message breaks the 64 KiB limit on trailers.
		_, err := callback("long-error")
		refused(t, err, "HandleCallback")
		if len(err.Error()) > MaxReplyHeaderBytes {
			t.Errorf("an error of %d bytes came through", len(err.Error()))
		}
	})
	for _, tc := range []struct{ subject, field, limit string }{
		{"sub-refresh-huge", "reply", limit(MaxReplyBytes)},
		{"sub-refresh-long-data", "connector_data", limit(MaxConnectorDataBytes)},
	} {
		t.Run("Refresh "+tc.subject, func(t *testing.T) {
			_, err := p.Connector().(connectors.RefreshConnector).Refresh(ctx, connectors.Scopes{}, connectors.Identity{Subject: tc.subject})
			refused(t, err, tc.field, tc.limit, "Refresh")
		})
	}

	// The plugin still serves, in the same process.
	id, err := callback("ann")
	if err != nil || id.Subject != "sub-ann" || string(id.ConnectorData) != "data-ann" {
		t.Fatalf("an honest answer after the hostile ones: %+v, %v", id, err)
	}
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s", CallbackURL: "https://broker.test/cb"}); err != nil {
		t.Fatalf("LoginURL after the hostile answers: %v", err)
	}
	if n := p.Restarts(); n != 0 {
		t.Errorf("Restarts() = %d, want 0: a refused answer is not a crash", n)
	}
}
