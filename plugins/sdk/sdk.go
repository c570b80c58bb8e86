// Package sdk is the Go SDK of Bridgekeeper connector plugins: the whole
// main function of a plugin binary is a call to Serve with the
// connector's connectors.OpenFunc.
//
//	func main() { sdk.Serve(open) }
//
// The connector contract is package connectors; docs/plugins.md is the
// guide. Two helpers come with Serve: the *slog.Logger handed to open
// writes to the broker's log, tagged with the connector's id, at the level
// the broker logs; and a connector whose HTTP client uses
// upstreamtime.Transport (package connectors/upstreamtime) with the call's
// context has the time each call waited for its upstream reported to the
// broker.
package sdk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

// Serve runs a connector plugin. The broker launches the binary, Serve
// answers the handshake and then calls open with the connector's
// configuration. The logger handed to open writes to the broker's log,
// tagged with the connector's id; the context handed to open ends when
// open returns, so background work needs a context of its own. open runs
// again whenever the broker relaunches the plugin. Every call to the
// connector gets the call's deadline in its context, and a panic fails
// only the call that caused it.
//
// Serve does not return: the process exits when the broker closes it. Run
// by hand, the binary says it is a plugin and exits with status 1.
func Serve(open connectors.OpenFunc) {
	// go-plugin redirects os.Stderr into a gRPC stream once it serves;
	// logs go to the real standard error, which the broker reads line by
	// line.
	stderr := os.Stderr
	level := wire.LevelFromEnv(os.Getenv(wire.LogLevelEnv))
	go exitWithParent(os.Getppid(), time.Second)
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins: goplugin.PluginSet{
			wire.PluginName: &wire.GRPCPlugin{Connector: wire.NewServer(open, slog.New(wire.NewLogHandler(stderr, level)))},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.ChainUnaryInterceptor(recoverPanics(stderr), wire.ReportUpstreamTime))
			return grpc.NewServer(opts...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "go-plugin",
			Output:     stderr,
			JSONFormat: true,
			Level:      hclog.LevelFromString(wire.LevelName(max(level, slog.LevelWarn))),
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

// recoverPanics turns a panic in a connector into an Internal error for
// that call, with the stack in the log, instead of a crashed plugin.
func recoverPanics(stderr io.Writer) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger := slog.New(wire.NewLogHandler(stderr, slog.LevelError))
				logger.Error("connector panicked", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, fmt.Sprintf("the connector panicked: %v", r))
			}
		}()
		return handler(ctx, req)
	}
}
