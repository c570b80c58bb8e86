package wire

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

// Client is the host's side of the three calls: it sends connectors values
// as connector.proto messages and checks what comes back. Its errors are
// the call's own gRPC error, as is, for the host to classify, or a
// *BadAnswer: the plugin answered, but the answer breaks the contract.
type Client struct {
	RPC connectorpb.ConnectorClient
	// Logger gets the warnings about answers mended on the way in.
	Logger *slog.Logger
}

// BadAnswer is an answer that breaks the contract. It wraps
// ErrPluginFailed.
type BadAnswer struct{ Err error }

func (e *BadAnswer) Error() string { return e.Err.Error() }
func (e *BadAnswer) Unwrap() error { return e.Err }

func badAnswer(format string, args ...any) error {
	return &BadAnswer{fmt.Errorf(format, args...)}
}

// LoginURL starts a login at the plugin's upstream.
func (c Client) LoginURL(ctx context.Context, req connectors.LoginRequest, opts ...grpc.CallOption) (connectors.LoginResponse, error) {
	resp, err := c.RPC.LoginURL(ctx, loginURLToProto(req), opts...)
	switch {
	case err != nil:
		return connectors.LoginResponse{}, err
	case checkLogin(resp) != nil:
		return connectors.LoginResponse{}, badAnswer("%w: %w", ErrPluginFailed, checkLogin(resp))
	case resp.GetUrl() == "":
		return connectors.LoginResponse{}, badAnswer("the plugin returned no URL: %w", ErrPluginFailed)
	case !webURL(resp.GetUrl()):
		// It becomes the Location of the browser's redirect: a
		// javascript: or data: URL there runs in the broker's origin on
		// some browsers, a relative one stays on the broker.
		return connectors.LoginResponse{}, badAnswer("the plugin's login URL is not an absolute http(s) URL (scheme %q): %w",
			urlScheme(resp.GetUrl()), ErrPluginFailed)
	}
	return connectors.LoginResponse{URL: resp.GetUrl(), ConnectorState: resp.GetConnectorState()}, nil
}

// HandleCallback turns the upstream's redirect back into an identity.
func (c Client) HandleCallback(ctx context.Context, req connectors.CallbackRequest, opts ...grpc.CallOption) (connectors.Identity, error) {
	resp, err := c.RPC.HandleCallback(ctx, callbackToProto(req), opts...)
	if err != nil {
		return connectors.Identity{}, err
	}
	return c.identity(resp.GetIdentity())
}

// Refresh re-checks an identity upstream.
func (c Client) Refresh(ctx context.Context, scopes connectors.Scopes, identity connectors.Identity, opts ...grpc.CallOption) (connectors.Identity, error) {
	in, err := identityToProto(identity)
	if err != nil {
		return connectors.Identity{}, err
	}
	resp, err := c.RPC.Refresh(ctx, &connectorpb.RefreshRequest{Scopes: scopesToProto(scopes), Identity: in}, opts...)
	if err != nil {
		return connectors.Identity{}, err
	}
	return c.identity(resp.GetIdentity())
}

// identity checks a plugin's identity and converts it.
func (c Client) identity(pid *connectorpb.Identity) (connectors.Identity, error) {
	if err := checkIdentity(pid); err != nil {
		return connectors.Identity{}, badAnswer("%w: %w", ErrPluginFailed, err)
	}
	id, err := identityFromProto(pid)
	if err != nil {
		return connectors.Identity{}, badAnswer("%w: %w", ErrPluginFailed, err)
	}
	if id.Subject == "" {
		return connectors.Identity{}, badAnswer("the plugin returned an identity without a subject: %w", ErrPluginFailed)
	}
	if id.Picture != "" && !webURL(id.Picture) {
		// It becomes the ID token's picture claim, which apps put in
		// src and href attributes: only an http(s) URL may get there.
		if c.Logger != nil {
			c.Logger.Warn("connector plugin: picture is not an http(s) URL; dropped")
		}
		id.Picture = ""
	}
	return id, nil
}

// webURL reports whether s is an absolute http or https URL with a host.
func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// urlScheme is s's scheme for an error message, "" when it has none.
func urlScheme(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Scheme
	}
	return ""
}

// server is the plugin side of the connector contract.
type server struct {
	connectorpb.UnimplementedConnectorServer

	open   connectors.OpenFunc
	logger *slog.Logger

	mu        sync.RWMutex
	connector connectors.Connector
}

// NewServer is the plugin side of the contract for a connector that open
// builds at Configure; logger goes to the connector.
func NewServer(open connectors.OpenFunc, logger *slog.Logger) connectorpb.ConnectorServer {
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
		Sdk:             SDKName,
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
	id, err := c.HandleCallback(ctx, callbackFromProto(req))
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
