package plugins

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// Serve runs a connector plugin: the whole main function of a plugin binary
// is a call to Serve with the connector's OpenFunc. The broker launches the
// binary, Serve answers the handshake and then calls open with the
// connector's configuration. The logger handed to open writes to the
// broker's log, tagged with the connector's id; the context handed to open
// ends when open returns, so background work needs a context of its own.
// open runs again whenever the broker relaunches the plugin.
//
// Serve does not return: the process exits when the broker closes it. Run
// by hand, the binary says it is a plugin and exits with status 1.
func Serve(open connectors.OpenFunc) {
	// go-plugin redirects os.Stderr into a gRPC stream once it serves;
	// logs go to the real standard error, which the broker reads line by
	// line.
	stderr := os.Stderr
	level := levelFromEnv(os.Getenv(LogLevelEnv))
	go exitWithParent(os.Getppid(), time.Second)
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins: goplugin.PluginSet{
			pluginName: &grpcPlugin{server: newServer(open, slog.New(newPluginLogHandler(stderr, level)))},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.ChainUnaryInterceptor(recoverPanics(stderr), reportUpstreamTime))
			return grpc.NewServer(opts...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Output:     stderr,
			JSONFormat: true,
			Level:      hclog.LevelFromString(levelName(max(level, slog.LevelWarn))),
		}),
	})
}

// exitWithParent ends the plugin when the broker that started it is gone
// (killed without the chance to stop its plugins): the plugin is then
// adopted by another process and its parent id changes.
func exitWithParent(parent int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != parent {
			os.Exit(0)
		}
	}
}

// server is the plugin side of the connector contract.
type server struct {
	connectorpb.UnimplementedConnectorServer

	open   connectors.OpenFunc
	logger *slog.Logger

	mu        sync.RWMutex
	connector connectors.Connector
}

func newServer(open connectors.OpenFunc, logger *slog.Logger) *server {
	return &server{open: open, logger: logger}
}

func (s *server) current() (connectors.Connector, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.connector == nil {
		return nil, errNotConfigured
	}
	return s.connector, nil
}

func capabilities(c connectors.Connector) *connectorpb.Capabilities {
	_, refresh := c.(connectors.RefreshConnector)
	rc, ok := c.(connectors.ReauthConnector)
	return &connectorpb.Capabilities{Refresh: refresh, Reauthenticate: ok && rc.CanReauthenticate()}
}

func (s *server) GetInfo(context.Context, *connectorpb.GetInfoRequest) (*connectorpb.GetInfoResponse, error) {
	resp := &connectorpb.GetInfoResponse{
		ProtocolVersion: ProtocolVersion,
		Name:            filepath.Base(os.Args[0]),
		Sdk:             sdkName,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Path != "" {
			resp.Name = bi.Path
		}
		resp.Version = bi.Main.Version
	}
	if c, err := s.current(); err == nil {
		resp.Configured = true
		resp.Capabilities = capabilities(c)
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *connectorpb.ConfigureRequest) (*connectorpb.ConfigureResponse, error) {
	// The host tags every line with connector=<id> itself.
	c, err := s.open(ctx, req.GetConfigJson(), s.logger)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if c == nil {
		return nil, status.Error(codes.Internal, "the connector's OpenFunc returned no connector and no error")
	}
	s.mu.Lock()
	s.connector = c
	s.mu.Unlock()
	return &connectorpb.ConfigureResponse{Capabilities: capabilities(c)}, nil
}

func (s *server) LoginURL(ctx context.Context, req *connectorpb.LoginURLRequest) (*connectorpb.LoginURLResponse, error) {
	c, err := s.current()
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	resp, err := c.LoginURL(ctx, loginURLFromProto(req))
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &connectorpb.LoginURLResponse{Url: resp.URL, ConnectorState: resp.ConnectorState}, nil
}

func (s *server) HandleCallback(ctx context.Context, req *connectorpb.HandleCallbackRequest) (*connectorpb.HandleCallbackResponse, error) {
	c, err := s.current()
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	id, err := c.HandleCallback(ctx, req.GetConnectorState(), req.GetCallbackUrl(), connectors.CallbackRequest{
		Query: valuesFromProto(req.GetQuery()),
		Form:  valuesFromProto(req.GetForm()),
	})
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	pid, err := identityToProto(id)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &connectorpb.HandleCallbackResponse{Identity: pid}, nil
}

func (s *server) Refresh(ctx context.Context, req *connectorpb.RefreshRequest) (*connectorpb.RefreshResponse, error) {
	c, err := s.current()
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	rc, ok := c.(connectors.RefreshConnector)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the connector cannot refresh identities")
	}
	in, err := identityFromProto(req.GetIdentity())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	out, err := rc.Refresh(ctx, scopesFromProto(req.GetScopes()), in)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	pid, err := identityToProto(out)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	return &connectorpb.RefreshResponse{Identity: pid}, nil
}

// recoverPanics turns a panic in a connector into an Internal error for
// that call, with the stack in the log, instead of a crashed plugin.
func recoverPanics(stderr io.Writer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger := slog.New(newPluginLogHandler(stderr, slog.LevelError))
				logger.Error("connector panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, fmt.Sprintf("the connector panicked: %v", r))
			}
		}()
		return handler(ctx, req)
	}
}
