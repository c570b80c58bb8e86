// Package cryptobackend names the implementation behind crypto/rsa,
// crypto/ecdsa and the other standard crypto packages in this build: Go's
// own, or BoringSSL's when built with `make build CRYPTO=boring`
// (GOEXPERIMENT=boringcrypto). The broker logs it at start.
package cryptobackend

// Go is the standard library's own implementation.
const Go = "Go"

// BoringCrypto is BoringSSL's, through Go's boringcrypto experiment.
const BoringCrypto = "BoringCrypto"
