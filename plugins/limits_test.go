package plugins

import (
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// TestHostileReplies launches the hostile test plugin (built with the SDK)
// and has it break every reply limit: each answer is refused with
// ErrPluginFailed naming the field and its limit, and the same plugin
// process goes on serving honest answers.
func TestHostileReplies(t *testing.T) {
	ctx := testContext(t)
	p, _ := launchTest(t, func(c *Config) {
		c.Path = hostileConnectorPath
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
			resp, err := p.LoginURL(ctx, connectors.LoginRequest{State: "s", CallbackURL: "https://broker.test/cb", LoginHint: tc.hint})
			refused(t, err, tc.field, tc.limit, "LoginURL")
			if resp.URL != "" || resp.ConnectorState != nil {
				t.Errorf("a refused answer came back: %d bytes of state", len(resp.ConnectorState))
			}
		})
	}
	callback := func(code string) (connectors.Identity, error) {
		return p.HandleCallback(ctx, []byte("ok"), "https://broker.test/cb", connectors.CallbackRequest{Query: url.Values{"code": {code}}})
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
			_, err := p.Refresh(ctx, connectors.Scopes{}, connectors.Identity{Subject: tc.subject})
			refused(t, err, tc.field, tc.limit, "Refresh")
		})
	}

	// The plugin still serves, in the same process.
	id, err := callback("ann")
	if err != nil || id.Subject != "sub-ann" || string(id.ConnectorData) != "data-ann" {
		t.Fatalf("an honest answer after the hostile ones: %+v, %v", id, err)
	}
	if _, err := p.LoginURL(ctx, connectors.LoginRequest{State: "s", CallbackURL: "https://broker.test/cb"}); err != nil {
		t.Fatalf("LoginURL after the hostile answers: %v", err)
	}
	if n := p.Restarts(); n != 0 {
		t.Errorf("Restarts() = %d, want 0: a refused answer is not a crash", n)
	}
}

// TestIdentityLimits checks each limit at its boundary: at the limit an
// identity passes, one byte (or group) over it is refused naming the
// field.
func TestIdentityLimits(t *testing.T) {
	p := &Plugin{cfg: Config{ID: "limits"}, logger: slog.New(slog.DiscardHandler)}
	at := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		field string
		set   func(id *connectorpb.Identity, over int)
	}{
		{"subject", func(id *connectorpb.Identity, over int) { id.Subject = at(MaxSubjectBytes + over) }},
		{"email", func(id *connectorpb.Identity, over int) { id.Email = at(MaxEmailBytes + over) }},
		{"name", func(id *connectorpb.Identity, over int) { id.Name = at(MaxNameBytes + over) }},
		{"given_name", func(id *connectorpb.Identity, over int) { id.GivenName = at(MaxNameBytes + over) }},
		{"family_name", func(id *connectorpb.Identity, over int) { id.FamilyName = at(MaxNameBytes + over) }},
		{"picture", func(id *connectorpb.Identity, over int) {
			id.Picture = "https://p.example/" + at(MaxPictureBytes-len("https://p.example/")+over)
		}},
		{"groups", func(id *connectorpb.Identity, over int) { id.Groups = make([]string, MaxGroups+over) }},
		{"groups[0]", func(id *connectorpb.Identity, over int) { id.Groups = []string{at(MaxGroupBytes + over)} }},
		{"claims_json", func(id *connectorpb.Identity, over int) {
			id.ClaimsJson = []byte(`{"a":"` + at(MaxClaimsJSONBytes-8+over) + `"}`)
		}},
		{"connector_data", func(id *connectorpb.Identity, over int) { id.ConnectorData = make([]byte, MaxConnectorDataBytes+over) }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			id := &connectorpb.Identity{Subject: "sub"}
			tc.set(id, 0)
			if _, err := p.identity("HandleCallback", id); err != nil {
				t.Errorf("at the limit: %v", err)
			}
			id = &connectorpb.Identity{Subject: "sub"}
			tc.set(id, 1)
			_, err := p.identity("HandleCallback", id)
			if !errors.Is(err, ErrPluginFailed) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "over the limit") {
				t.Errorf("one over the limit: %v", err)
			}
		})
	}
	login := func(u string, state []byte) error {
		return checkLogin(&connectorpb.LoginURLResponse{Url: u, ConnectorState: state})
	}
	if err := login(at(MaxLoginURLBytes), make([]byte, MaxConnectorStateBytes)); err != nil {
		t.Errorf("login answer at the limits: %v", err)
	}
	if err := login(at(MaxLoginURLBytes+1), nil); err == nil || !strings.Contains(err.Error(), "url is") {
		t.Errorf("login URL over the limit: %v", err)
	}
	if err := login("https://x", make([]byte, MaxConnectorStateBytes+1)); err == nil || !strings.Contains(err.Error(), "connector_state is") {
		t.Errorf("connector state over the limit: %v", err)
	}
	if err := login("https://x/\x00", nil); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("login URL with a NUL: %v", err)
	}
}

// TestPictureMustBeAWebURL: a picture that is not an http(s) URL
// (javascript:, data:, a relative path) is dropped, not passed on to the
// ID token's picture claim, where apps use it as a link or image source.
func TestPictureMustBeAWebURL(t *testing.T) {
	p := &Plugin{cfg: Config{ID: "pictures"}, logger: slog.New(slog.DiscardHandler)}
	for picture, want := range map[string]string{
		"https://img.example/a.png": "https://img.example/a.png",
		"http://img.example/a.png":  "http://img.example/a.png",
		"javascript:alert(1)":       "",
		"JAVASCRIPT:alert(1)":       "",
		"data:image/svg+xml,<svg/>": "",
		"/a.png":                    "",
		"https:///a.png":            "",
	} {
		id, err := p.identity("HandleCallback", &connectorpb.Identity{Subject: "sub", Picture: picture})
		if err != nil || id.Picture != want {
			t.Errorf("picture %q: got %q, %v; want %q", picture, id.Picture, err, want)
		}
	}
}
