package plugins

import (
	"errors"

	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

// Errors the host returns (wrapped with the connector id and the call)
// besides the connector errors of package connectors.
var (
	// ErrPluginUnavailable: the plugin process exited or its connection
	// broke during the call. The next call launches it again.
	ErrPluginUnavailable = errors.New("the connector plugin is not running")
	// ErrPluginFailed: the plugin answered with an internal error or an
	// answer that breaks the contract.
	ErrPluginFailed = wire.ErrPluginFailed
	// ErrChecksumMismatch: the plugin binary's SHA-256 is not the one in
	// the configuration; it was not started.
	ErrChecksumMismatch = errors.New("the plugin binary's SHA-256 does not match the configuration")
	// ErrClosed: the plugin was closed.
	ErrClosed = errors.New("the connector plugin is closed")
)
