package storage

import (
	"crypto/sha256"
	"encoding/base64"
)

// accessKey is the key under which an access token is stored: the
// SHA-256 of the signature fosite names it by, base64url without padding
// (43 characters).
//
// A JWT access token's signature is its third segment, and its first two
// (header and claims) can be rebuilt from what the row keeps: a database
// that stored the signature itself would hand whoever reads it working
// bearer tokens. The hash is also short: an RS256 signature is 342
// characters, repeated in the primary key's index and in every refresh
// token's row, and the short key keeps those pages few.
func accessKey(signature string) string {
	if signature == "" {
		return "" // a refresh token issued without an access token
	}
	sum := sha256.Sum256([]byte(signature))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
