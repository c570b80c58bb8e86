//go:build !boringcrypto

package cryptobackend

// Name is the implementation in use: Go (this build has no BoringCrypto).
func Name() string { return Go }
