// Package wire is the connector contract on the wire, both sides of it, as
// go-plugin's examples/grpc keeps its GRPCClient beside its GRPCServer: the
// handshake, the go-plugin glue, the host's client of the three calls
// (LoginURL, HandleCallback, Refresh) beside the plugin's server of them,
// the conversions between connectors values and connector.proto, the
// mapping of connector errors to gRPC statuses and back, the limits on a
// plugin's answers, the upstream-time trailer and the plugins' log format.
// The host (package plugins) supervises processes around it; the SDK
// (package plugins/sdk) serves a connector through it.
package wire

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

const (
	// ProtocolVersion is the connector contract's version: the application
	// protocol version in go-plugin's handshake line and the version in
	// GetInfoResponse.protocol_version.
	ProtocolVersion = 1

	// MagicCookieKey and MagicCookieValue are the environment variable the
	// broker sets when it launches a plugin. A plugin refuses to run without
	// it, so running a plugin binary by hand explains itself instead of
	// hanging.
	MagicCookieKey   = "BRIDGEKEEPER_PLUGIN"
	MagicCookieValue = "connector-v1-4f1c9b7e2d"

	// LogLevelEnv tells a plugin the lowest level the broker logs
	// ("debug", "info", "warn" or "error"), so it need not write lines
	// that would be dropped.
	LogLevelEnv = "BRIDGEKEEPER_PLUGIN_LOG_LEVEL"

	// PluginName is the name of the one plugin each binary serves.
	PluginName = "connector"
	// HealthService is the service name go-plugin's gRPC health check uses.
	HealthService = goplugin.GRPCServiceName
	// SDKName is what GetInfo reports for plugins built with the Go SDK.
	SDKName = "bridgekeeper-go-sdk"

	// reasonKey is the trailing metadata entry that carries an error reason.
	reasonKey = "bridgekeeper-error-reason"
	// errorDetailKey is the trailing metadata entry that carries an
	// ErrorDetail (a user message) with an error answer.
	errorDetailKey = "bridgekeeper-error-detail-bin"
)

// Handshake is go-plugin's handshake of a connector plugin.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// GRPCPlugin is the go-plugin glue on both sides: the plugin registers its
// Connector server through it, the host gets its connection from it.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Connector connectorpb.ConnectorServer
}

func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	connectorpb.RegisterConnectorServer(s, p.Connector)
	return nil
}

// GRPCClient hands the host the connection and a context that go-plugin
// cancels when the plugin process exits.
func (p *GRPCPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &Dispensed{Exited: ctx, Conn: conn}, nil
}

// Dispensed is what the host's Dispense returns.
type Dispensed struct {
	// Exited is done once the plugin process has exited.
	Exited context.Context
	Conn   *grpc.ClientConn
}
