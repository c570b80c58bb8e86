//go:build boringcrypto

package cryptobackend

import "crypto/boring"

// Name is the implementation in use: BoringCrypto when this build has it
// and it is enabled, else Go.
func Name() string {
	if boring.Enabled() {
		return BoringCrypto
	}
	return Go
}
