package password

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// clientSecretPrefix versions the stored client-secret hash, so the scheme
// can change later without ambiguity.
const clientSecretPrefix = "$hmac-sha256-v1$"

// Errors of ClientSecretHasher.
var (
	ErrSecretMismatch    = errors.New("client secret does not match")
	ErrUnknownSecretHash = errors.New("client secret hash has an unknown format")
	ErrNoHasherKey       = errors.New("client secret hasher has no key")
)

// ClientSecretHasher hashes broker-generated client secrets with
// HMAC-SHA256 under a key derived from the system secret
// (secret.PurposeClientSecret). It implements fosite.Hasher.
//
// A stored hash reads "$hmac-sha256-v1$" followed by the unpadded base64url
// MAC. Keyed hashing is enough because the secrets are 256-bit random values:
// there is nothing to brute-force, and the key keeps a leaked database
// from being usable to check guesses offline.
type ClientSecretHasher struct {
	Key []byte // at least 32 bytes
}

// Hash returns the versioned keyed hash of data.
func (h ClientSecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	if len(h.Key) < 32 {
		return nil, ErrNoHasherKey
	}
	sum := h.mac(data)
	out := make([]byte, len(clientSecretPrefix)+base64.RawURLEncoding.EncodedLen(len(sum)))
	copy(out, clientSecretPrefix)
	base64.RawURLEncoding.Encode(out[len(clientSecretPrefix):], sum)
	return out, nil
}

// Compare returns nil when hash is the hash of data, ErrSecretMismatch when
// it is not, and ErrUnknownSecretHash when hash is not in a known format.
// The MACs are compared in constant time.
func (h ClientSecretHasher) Compare(_ context.Context, hash, data []byte) error {
	if len(h.Key) < 32 {
		return ErrNoHasherKey
	}
	encoded, ok := bytes.CutPrefix(hash, []byte(clientSecretPrefix))
	if !ok {
		return ErrUnknownSecretHash
	}
	var want [sha256.Size]byte
	if len(encoded) != base64.RawURLEncoding.EncodedLen(len(want)) {
		return ErrUnknownSecretHash
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(want[:], encoded); err != nil || n != len(want) {
		return ErrUnknownSecretHash
	}
	if !hmac.Equal(h.mac(data), want[:]) {
		return ErrSecretMismatch
	}
	return nil
}

func (h ClientSecretHasher) mac(data []byte) []byte {
	m := hmac.New(sha256.New, h.Key)
	m.Write(data)
	return m.Sum(nil)
}

// GenerateClientSecret returns a new client secret: 32 random bytes,
// unpadded base64url (43 characters).
func GenerateClientSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate client secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
