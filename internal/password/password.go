// Package password hashes human passwords with argon2id and broker-generated
// client secrets with a keyed HMAC.
//
// Human passwords are low-entropy, so they get a memory-hard hash that is
// deliberately slow (see Hash). Client secrets are 256-bit random values the
// broker generates, so a fast keyed hash verified in constant time is as
// strong and costs about a microsecond (see ClientSecretHasher).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// MaxLength is the longest password, in bytes, that Hash accepts and Verify
// considers. Longer inputs are rejected without being hashed, so a client
// cannot make the server hash megabytes.
const MaxLength = 1024

// ErrTooLong is returned by Hash for a password longer than MaxLength bytes.
var ErrTooLong = fmt.Errorf("password longer than %d bytes", MaxLength)

// ErrMalformedHash is wrapped by Verify's error when the stored hash is not a
// valid argon2id PHC string.
var ErrMalformedHash = errors.New("malformed password hash")

// params are the argon2id parameters of new hashes: RFC 9106's second
// recommended option scaled to the OWASP minimum for a server (19 MiB, two
// passes, one lane), which keeps a login around 20–30 ms on one core of this
// project's 2-core machine kind (see BenchmarkHash).
type params struct {
	memory  uint32 // KiB
	time    uint32 // passes
	threads uint8  // lanes
	keyLen  uint32 // bytes
	saltLen uint32 // bytes
}

var current = params{memory: 19 * 1024, time: 2, threads: 1, keyLen: 32, saltLen: 16}

// Limits on parameters read from a stored hash, so a corrupted or hostile
// row cannot make Verify allocate gigabytes or spin for minutes.
const (
	maxMemory  = 1 << 20 // KiB (1 GiB)
	maxTime    = 32
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
)

// Hash returns the argon2id hash of password as a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. Passwords longer than
// MaxLength bytes are rejected with ErrTooLong. Length and content policy
// (minimum length, an empty password) is the caller's decision.
func Hash(password string) (string, error) {
	if len(password) > MaxLength {
		return "", ErrTooLong
	}
	salt := make([]byte, current.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, current.time, current.memory, current.threads, current.keyLen)
	return encode(current, salt, key), nil
}

// Verify reports whether password matches the encoded hash, comparing in
// constant time. The error is non-nil only when encoded is malformed (it
// wraps ErrMalformedHash); a wrong or over-long password is (false, nil).
func Verify(encoded, password string) (bool, error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxLength {
		return false, nil
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than
// the ones Hash uses now (or is not a valid argon2id hash at all). Callers
// re-hash the password after a successful Verify when it returns true.
func NeedsRehash(encoded string) bool {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return true
	}
	return p.memory != current.memory || p.time != current.time || p.threads != current.threads ||
		uint32(len(key)) != current.keyLen || uint32(len(salt)) != current.saltLen
}

// DummyVerify spends the time of one Verify and discards the result. Call it
// when the account does not exist, so that a login for an unknown e-mail
// address takes as long as one with a wrong password.
func DummyVerify(password string) {
	if len(password) > MaxLength {
		return
	}
	var salt [16]byte
	argon2.IDKey([]byte(password), salt[:], current.time, current.memory, current.threads, current.keyLen)
}

func encode(p params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(encoded string) (p params, salt, key []byte, err error) {
	malformed := func(why string) (params, []byte, []byte, error) {
		return params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return malformed("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return malformed("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return malformed("unsupported argon2 version")
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			return malformed("bad parameter " + strconv.Quote(kv))
		}
		n, perr := strconv.ParseUint(value, 10, 32)
		if perr != nil || n == 0 {
			return malformed("bad parameter " + strconv.Quote(kv))
		}
		switch name {
		case "m":
			if n > maxMemory {
				return malformed("memory parameter too large")
			}
			p.memory, seen[0] = uint32(n), true
		case "t":
			if n > maxTime {
				return malformed("time parameter too large")
			}
			p.time, seen[1] = uint32(n), true
		case "p":
			if n > 255 {
				return malformed("parallelism parameter too large")
			}
			p.threads, seen[2] = uint8(n), true
		default:
			return malformed("unknown parameter " + strconv.Quote(name))
		}
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return malformed("missing parameter")
	}
	if p.memory < 8*uint32(p.threads) {
		return malformed("memory parameter below 8×parallelism")
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil {
		return malformed("salt is not base64")
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil {
		return malformed("hash is not base64")
	}
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return malformed("bad salt length")
	}
	if len(key) < minKeyLen || len(key) > maxKeyLen {
		return malformed("bad hash length")
	}
	p.keyLen, p.saltLen = uint32(len(key)), uint32(len(salt))
	return p, salt, key, nil
}
