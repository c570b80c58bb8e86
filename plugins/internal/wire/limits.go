package wire

import (
	"fmt"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// Limits on what a plugin may answer, documented where the broker exports
// them (package plugins). Client refuses a reply beyond them with a
// BadAnswer wrapping ErrPluginFailed that names the limit. Lengths are in
// bytes (UTF-8 for strings).
const (
	MaxReplyBytes          = 1 << 20
	MaxReplyHeaderBytes    = 64 << 10
	MaxLoginURLBytes       = 8 << 10
	MaxConnectorStateBytes = 8 << 10
	MaxSubjectBytes        = 255
	MaxEmailBytes          = 254
	MaxNameBytes           = 1024
	MaxPictureBytes        = 2048
	MaxGroups              = 1000
	MaxGroupBytes          = 256
	MaxClaimsJSONBytes     = 64 << 10
	MaxConnectorDataBytes  = 64 << 10
	MaxAMR                 = connectors.MaxAMR
	MaxAMRValueBytes       = connectors.MaxAMRValueBytes
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
	if err := connectors.CheckAMR(id.GetAmr()); err != nil {
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
