package plugins

import "github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"

// Limits on what a plugin may answer. The host refuses a reply beyond
// them with an error wrapping ErrPluginFailed that names the limit, and
// keeps nothing of it: a faulty or hostile plugin cannot make the broker
// hold, store or sign more than this. Lengths are in bytes (UTF-8 for
// strings).
const (
	// MaxReplyBytes bounds every gRPC message the host receives from a
	// plugin (gRPC's receive limit on the connection).
	MaxReplyBytes = wire.MaxReplyBytes
	// MaxReplyHeaderBytes bounds the headers and trailers of a reply (the
	// error message and reason of a failed call travel there).
	MaxReplyHeaderBytes = wire.MaxReplyHeaderBytes

	// MaxLoginURLBytes bounds LoginURLResponse.url (it becomes a Location
	// header).
	MaxLoginURLBytes = wire.MaxLoginURLBytes
	// MaxConnectorStateBytes bounds LoginURLResponse.connector_state (kept
	// with the pending login).
	MaxConnectorStateBytes = wire.MaxConnectorStateBytes

	// MaxSubjectBytes bounds Identity.subject (OpenID Connect Core §5.7:
	// at most 255 ASCII characters).
	MaxSubjectBytes = wire.MaxSubjectBytes
	// MaxEmailBytes bounds Identity.email (RFC 5321's path limit).
	MaxEmailBytes = wire.MaxEmailBytes
	// MaxNameBytes bounds each of Identity.name, given_name and
	// family_name.
	MaxNameBytes = wire.MaxNameBytes
	// MaxPictureBytes bounds Identity.picture.
	MaxPictureBytes = wire.MaxPictureBytes
	// MaxGroups bounds the number of Identity.groups, MaxGroupBytes each
	// group.
	MaxGroups     = wire.MaxGroups
	MaxGroupBytes = wire.MaxGroupBytes
	// MaxClaimsJSONBytes bounds Identity.claims_json.
	MaxClaimsJSONBytes = wire.MaxClaimsJSONBytes
	// MaxConnectorDataBytes bounds Identity.connector_data.
	MaxConnectorDataBytes = wire.MaxConnectorDataBytes
	// MaxAMR bounds the number of Identity.amr values, MaxAMRValueBytes
	// each value (letters, digits and "-", "_", ".", ":" only; see
	// connectors.CheckAMR).
	MaxAMR           = wire.MaxAMR
	MaxAMRValueBytes = wire.MaxAMRValueBytes
)
