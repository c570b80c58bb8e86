package plugins

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

// connector is the connector a plugin serves, as the broker calls it: each
// call goes through the supervisor (Plugin.invoke) to the plugin's current
// process.
type connector struct{ p *Plugin }

// refreshConnector is the connector of a plugin with the refresh
// capability: only it is a connectors.RefreshConnector.
type refreshConnector struct{ connector }

var (
	_ connectors.Connector        = connector{}
	_ connectors.ReauthConnector  = connector{}
	_ connectors.RefreshConnector = refreshConnector{}
)

// newConnector is p's connector for the capabilities of info.
func newConnector(p *Plugin, info Info) connectors.Connector {
	if info.Refresh {
		return refreshConnector{connector{p}}
	}
	return connector{p}
}

// Plugin is the process supervisor behind the connector.
func (c connector) Plugin() *Plugin { return c.p }

// LoginURL implements connectors.CallbackConnector.
func (c connector) LoginURL(ctx context.Context, req connectors.LoginRequest) (resp connectors.LoginResponse, err error) {
	if req.Fresh() && !c.CanReauthenticate() {
		// A plugin that does not understand the fields would ignore them;
		// the broker checks CanReauthenticate first.
		return connectors.LoginResponse{}, fmt.Errorf("connector %q: LoginURL: the plugin cannot force a new sign-in upstream", c.p.cfg.ID)
	}
	err = c.p.invoke(ctx, "LoginURL", func(ctx context.Context, inst *instance, opts ...grpc.CallOption) (err error) {
		resp, err = inst.calls.LoginURL(ctx, req, opts...)
		return err
	})
	return resp, err
}

// CanReauthenticate implements connectors.ReauthConnector: whether the
// plugin, as it said at its latest launch, honours ForceLogin and MaxAge.
func (c connector) CanReauthenticate() bool { return c.p.Info().Reauthenticate }

// HandleCallback implements connectors.CallbackConnector.
func (c connector) HandleCallback(ctx context.Context, req connectors.CallbackRequest) (id connectors.Identity, err error) {
	err = c.p.invoke(ctx, "HandleCallback", func(ctx context.Context, inst *instance, opts ...grpc.CallOption) (err error) {
		id, err = inst.calls.HandleCallback(ctx, req, opts...)
		return err
	})
	return id, err
}

// Refresh implements connectors.RefreshConnector. A process relaunched
// without the capability (another binary at the path) answers
// Unimplemented: the identity stays as it is, as for a connector without
// Refresh.
func (c refreshConnector) Refresh(ctx context.Context, scopes connectors.Scopes, identity connectors.Identity) (out connectors.Identity, err error) {
	err = c.p.invoke(ctx, "Refresh", func(ctx context.Context, inst *instance, opts ...grpc.CallOption) (err error) {
		if !inst.info.Refresh {
			out = identity
			return nil
		}
		out, err = inst.calls.Refresh(ctx, scopes, identity, opts...)
		if status.Code(err) == codes.Unimplemented {
			out = identity
			return nil
		}
		return err
	})
	return out, err
}
