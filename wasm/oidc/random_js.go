//go:build js

package oidc

import "io"

// defaultRandom: in the browser Deps.Random is required (wasm/jsbridge
// passes crypto.getRandomValues), so that crypto/rand is not linked.
func defaultRandom() io.Reader { return nil }
