// Package plugins runs connectors as separate processes: the host side
// (Launch) turns a plugin binary into a connectors.Connector, and the SDK side
// (Serve) turns a connectors.OpenFunc into a plugin binary. The two speak
// hashicorp/go-plugin's handshake and then gRPC, with the contract in
// plugins/proto/connector.proto, so plugins can be written in any language.
package plugins

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

	// pluginName is the name of the one plugin each binary serves.
	pluginName = "connector"
	// healthService is the service name go-plugin's gRPC health check uses.
	healthService = goplugin.GRPCServiceName
	// reasonKey is the trailing metadata entry that carries an error reason.
	reasonKey = "bridgekeeper-error-reason"
	// errorDetailKey is the trailing metadata entry that carries an
	// ErrorDetail (a user message) with an error answer.
	errorDetailKey = "bridgekeeper-error-detail-bin"
	// sdkName is what GetInfo reports for plugins built with Serve.
	sdkName = "bridgekeeper-go-sdk"
)

var handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// grpcPlugin is the go-plugin glue on both sides: the plugin registers its
// server through it, the host gets its client from it.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	server connectorpb.ConnectorServer
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	connectorpb.RegisterConnectorServer(s, p.server)
	return nil
}

// GRPCClient hands the host the connection and a context that go-plugin
// cancels when the plugin process exits.
func (p *grpcPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &dispensed{exited: ctx, conn: conn}, nil
}

type dispensed struct {
	exited context.Context
	conn   *grpc.ClientConn
}
