//go:build !js

package oidc

import (
	"crypto/rand"
	"io"
)

// defaultRandom is the random source when Deps.Random is nil: crypto/rand
// on the host. The js/wasm build has none (the bindings pass
// crypto.getRandomValues), which keeps crypto/rand out of the .wasm.
func defaultRandom() io.Reader { return rand.Reader }
