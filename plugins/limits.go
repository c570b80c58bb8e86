package plugins

import (
	"fmt"
	"strings"

	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// Limits on what a plugin may answer. The host refuses a reply beyond
// them with an error wrapping ErrPluginFailed that names the limit, and
// keeps nothing of it: a faulty or hostile plugin cannot make the broker
// hold, store or sign more than this. Lengths are in bytes (UTF-8 for
// strings).
const (
	// MaxReplyBytes bounds every gRPC message the host receives from a
	// plugin (gRPC's receive limit on the connection).
	MaxReplyBytes = 1 << 20
	// MaxReplyHeaderBytes bounds the headers and trailers of a reply (the
	// error message and reason of a failed call travel there).
	MaxReplyHeaderBytes = 64 << 10

	// MaxLoginURLBytes bounds LoginURLResponse.url (it becomes a Location
	// header).
	MaxLoginURLBytes = 8 << 10
	// MaxConnectorStateBytes bounds LoginURLResponse.connector_state (kept
	// with the pending login).
	MaxConnectorStateBytes = 8 << 10

	// MaxSubjectBytes bounds Identity.subject (OpenID Connect Core §5.7:
	// at most 255 ASCII characters).
	MaxSubjectBytes = 255
	// MaxEmailBytes bounds Identity.email (RFC 5321's path limit).
	MaxEmailBytes = 254
	// MaxNameBytes bounds each of Identity.name, given_name and
	// family_name.
	MaxNameBytes = 1024
	// MaxPictureBytes bounds Identity.picture.
	MaxPictureBytes = 2048
	// MaxGroups bounds the number of Identity.groups, MaxGroupBytes each
	// group.
	MaxGroups     = 1000
	MaxGroupBytes = 256
	// MaxClaimsJSONBytes bounds Identity.claims_json.
	MaxClaimsJSONBytes = 64 << 10
	// MaxConnectorDataBytes bounds Identity.connector_data.
	MaxConnectorDataBytes = 64 << 10
)

// checkLogin refuses a LoginURL answer over its limits.
func checkLogin(resp *connectorpb.LoginURLResponse) error {
	if err := checkString("url", resp.GetUrl(), MaxLoginURLBytes); err != nil {
		return err
	}
	return checkBytes("connector_state", resp.GetConnectorState(), MaxConnectorStateBytes)
}

// checkIdentity refuses an identity with a field over its limit or a
// string holding a NUL byte (no database text column takes one). Strings
// are valid UTF-8 already: protobuf refuses anything else when it decodes
// the reply. The error names the first field found at fault.
func checkIdentity(id *connectorpb.Identity) error {
	for _, f := range []struct {
		name  string
		value string
		limit int
	}{
		{"subject", id.GetSubject(), MaxSubjectBytes},
		{"email", id.GetEmail(), MaxEmailBytes},
		{"name", id.GetName(), MaxNameBytes},
		{"given_name", id.GetGivenName(), MaxNameBytes},
		{"family_name", id.GetFamilyName(), MaxNameBytes},
		{"picture", id.GetPicture(), MaxPictureBytes},
	} {
		if err := checkString(f.name, f.value, f.limit); err != nil {
			return err
		}
	}
	groups := id.GetGroups()
	if len(groups) > MaxGroups {
		return fmt.Errorf("the identity has %d groups, over the limit of %d", len(groups), MaxGroups)
	}
	for i, g := range groups {
		if err := checkString(fmt.Sprintf("groups[%d]", i), g, MaxGroupBytes); err != nil {
			return err
		}
	}
	if err := checkBytes("claims_json", id.GetClaimsJson(), MaxClaimsJSONBytes); err != nil {
		return err
	}
	return checkBytes("connector_data", id.GetConnectorData(), MaxConnectorDataBytes)
}

func checkString(field, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes, over the limit of %d", field, len(s), limit)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s holds a NUL byte", field)
	}
	return nil
}

func checkBytes(field string, b []byte, limit int) error {
	if len(b) > limit {
		return fmt.Errorf("%s is %d bytes, over the limit of %d", field, len(b), limit)
	}
	return nil
}
