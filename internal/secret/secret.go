// Package secret loads the broker's system secret and derives the
// purpose-specific keys from it (HKDF-SHA256).
//
// One 32-byte system secret is the root of every symmetric key the broker
// uses: the HMAC key for authorization codes and refresh tokens, the AES-GCM
// key that encrypts signing keys at rest, the key for client-secret hashes and
// the cookie key. It comes from configuration (or the environment); for an
// SQLite database with none configured it is generated once into a file next
// to the database, so `serve` and the CLI commands agree on it.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvVar is the environment variable that may hold the system secret.
const EnvVar = "BRIDGEKEEPER_SYSTEM_SECRET"

// FileName is the name of the generated secret file next to an SQLite database.
const FileName = "bridgekeeper.secret"

// Purposes for Derive.
const (
	PurposeTokenHMAC     = "bridgekeeper token hmac v1"
	PurposeKeyEncryption = "bridgekeeper signing key encryption v1"
	PurposeClientSecret  = "bridgekeeper client secret hash v1"
	PurposeCookie        = "bridgekeeper cookie v1"
	// PurposeDPoPNonce keys the stateless DPoP server nonces (RFC 9449).
	PurposeDPoPNonce = "bridgekeeper dpop nonce v1"
	// PurposeConnectorData is the AES-256-GCM key of what connectors keep
	// with an identity (upstream refresh and access tokens) at rest.
	PurposeConnectorData = "bridgekeeper connector data encryption v1"
	// PurposeSecondFactor is the AES-256-GCM key of second-factor secrets
	// (TOTP keys) at rest.
	PurposeSecondFactor = "bridgekeeper second factor encryption v1"
	// PurposeRecoveryCode is the HMAC key of recovery-code hashes.
	PurposeRecoveryCode = "bridgekeeper recovery code hash v1"
)

// System is the root secret.
type System struct {
	key []byte
	// Generated is true when the secret was created by this call to Load.
	Generated bool
	// Path is the file the secret was read from or written to ("" when it
	// came from configuration or the environment).
	Path string
}

// Parse decodes a configured secret: base64 (std or URL, padded or not) of
// at least 32 bytes, or a string of at least 32 characters used as is.
func Parse(s string) (*System, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) >= 32 {
			return &System{key: b}, nil
		}
	}
	if len(s) >= 32 {
		return &System{key: []byte(s)}, nil
	}
	return nil, errors.New("system secret must be at least 32 bytes (base64) or 32 characters")
}

// Load returns the system secret: configured (if not empty), else from
// $BRIDGEKEEPER_SYSTEM_SECRET, else — for an SQLite DSN ("sqlite:PATH") —
// from FileName next to the database, generated there on first use.
func Load(configured, dsn string) (*System, error) {
	if configured != "" {
		return Parse(configured)
	}
	if env := os.Getenv(EnvVar); env != "" {
		s, err := Parse(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvVar, err)
		}
		return s, nil
	}
	path, ok := sqlitePath(dsn)
	if !ok {
		return nil, fmt.Errorf("no system secret configured: set secrets.system in the config or %s (32+ random bytes, base64); it is generated automatically only for SQLite", EnvVar)
	}
	file := filepath.Join(filepath.Dir(path), FileName)
	if b, err := os.ReadFile(file); err == nil {
		s, err := Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		s.Path = file
		return s, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read system secret: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate system secret: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("create secret directory: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // another process won the race
		return Load("", dsn)
	}
	if err != nil {
		return nil, fmt.Errorf("write system secret: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write system secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write system secret: %w", err)
	}
	return &System{key: key, Generated: true, Path: file}, nil
}

// Derive returns a 32-byte key for one purpose.
func (s *System) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, s.key, nil, purpose, 32)
	if err != nil { // only for lengths HKDF cannot produce; 32 always works
		panic("secret: hkdf: " + err.Error())
	}
	return k
}

func sqlitePath(dsn string) (string, bool) {
	rest, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return "", false
	}
	rest = strings.TrimPrefix(rest, "//")
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" || rest == ":memory:" {
		return "", false
	}
	return rest, true
}

// ErrOpen is returned by Open when a sealed value does not decrypt: it was
// sealed under another key (another system secret) or for other associated
// data, or it was altered.
var ErrOpen = errors.New("sealed value does not decrypt (wrong system secret, or altered)")

// Seal encrypts plaintext with AES-256-GCM under key (32 bytes, from
// Derive), binding it to the associated data ad, which Open must be given
// again. The result is the random nonce followed by the ciphertext.
func Seal(key, plaintext, ad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, ad), nil
}

// Open reverses Seal; it fails with ErrOpen when sealed was not sealed
// under key for ad.
func Open(key, sealed, ad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("seal: the key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}
