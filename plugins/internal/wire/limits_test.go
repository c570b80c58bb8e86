package wire

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// TestIdentityLimits checks each limit at its boundary: at the limit an
// identity passes, one byte (or group) over it is refused naming the
// field.
func TestIdentityLimits(t *testing.T) {
	p := Client{Logger: slog.New(slog.DiscardHandler)}
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
		{"amr", func(id *connectorpb.Identity, over int) {
			id.Amr = make([]string, MaxAMR+over)
			for i := range id.Amr {
				id.Amr[i] = "otp"
			}
		}},
		{"amr[0]", func(id *connectorpb.Identity, over int) { id.Amr = []string{at(MaxAMRValueBytes + over)} }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			id := &connectorpb.Identity{Subject: "sub"}
			tc.set(id, 0)
			if _, err := p.identity(id); err != nil {
				t.Errorf("at the limit: %v", err)
			}
			id = &connectorpb.Identity{Subject: "sub"}
			tc.set(id, 1)
			_, err := p.identity(id)
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
	p := Client{Logger: slog.New(slog.DiscardHandler)}
	for picture, want := range map[string]string{
		"https://img.example/a.png": "https://img.example/a.png",
		"http://img.example/a.png":  "http://img.example/a.png",
		"javascript:alert(1)":       "",
		"JAVASCRIPT:alert(1)":       "",
		"data:image/svg+xml,<svg/>": "",
		"/a.png":                    "",
		"https:///a.png":            "",
	} {
		id, err := p.identity(&connectorpb.Identity{Subject: "sub", Picture: picture})
		if err != nil || id.Picture != want {
			t.Errorf("picture %q: got %q, %v; want %q", picture, id.Picture, err, want)
		}
	}
}
