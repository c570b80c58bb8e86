// Package plugins is the broker's side of connector plugins: Launch turns
// a plugin binary into a supervised process (Plugin: checksum, launch,
// health, restart after a crash, backoff when it keeps crashing) whose
// Connector is a connectors.Connector. Plugins speak hashicorp/go-plugin's
// handshake and then gRPC, with the contract in
// plugins/proto/connector.proto, so they can be written in any language;
// a plugin in Go is built with package plugins/sdk.
package plugins

import "github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"

const (
	// ProtocolVersion is the connector contract's version: the application
	// protocol version in go-plugin's handshake line and the version in
	// GetInfoResponse.protocol_version.
	ProtocolVersion = wire.ProtocolVersion

	// MagicCookieKey and MagicCookieValue are the environment variable the
	// broker sets when it launches a plugin. A plugin refuses to run without
	// it, so running a plugin binary by hand explains itself instead of
	// hanging.
	MagicCookieKey   = wire.MagicCookieKey
	MagicCookieValue = wire.MagicCookieValue

	// LogLevelEnv tells a plugin the lowest level the broker logs
	// ("debug", "info", "warn" or "error"), so it need not write lines
	// that would be dropped.
	LogLevelEnv = wire.LogLevelEnv
)
