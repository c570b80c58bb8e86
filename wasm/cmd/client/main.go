//go:build js && wasm

// Command client is Bridgekeeper's browser client compiled to WebAssembly.
// It installs globalThis.bridgekeeperCore and waits; the npm package's
// worker loads it. Build:
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -o dist/bridgekeeper.wasm ./wasm/cmd/client
package main

import "github.com/bridgekeeper/bridgekeeper/wasm/jsbridge"

func main() {
	jsbridge.Register()
	select {}
}
