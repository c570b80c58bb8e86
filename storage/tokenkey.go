package storage

import (
	"crypto/sha256"
	"encoding/base64"
)

// accessKey is the key under which an access token is stored: the
// SHA-256 of the signature fosite names it by, base64url without padding
// (43 characters).
//
// A JWT access token's signature is its third segment, the one part only
// the broker can make: its header and claims are readable by whoever sees
// the token, and the row keeps most of them. A database that stored the
// signature would give its readers that part. The hash is also short: an RS256 signature is 342
// characters, repeated in the primary key's index and in every refresh
// token's row, and the short key keeps those pages few.
func accessKey(signature string) string {
	if signature == "" {
		return "" // a refresh token issued without an access token
	}
	sum := sha256.Sum256([]byte(signature))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
