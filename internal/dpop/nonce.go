package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Nonces issues and checks stateless server nonces (§8): a nonce is a time
// window's number and an HMAC of it under a key derived from a shared secret,
// so every replica holding the secret issues and accepts the same nonces
// without storing them. A nonce is accepted in the window it was issued in
// and the next one, so it lives between one and two periods.
type Nonces struct {
	key    []byte
	period time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// nonceMACBytes is the length of the truncated HMAC in a nonce.
const nonceMACBytes = 16

// NewNonces derives a nonce key from secret (at least 32 bytes, shared by
// the replicas) and returns nonces rotating every period (a minute if ≤ 0).
func NewNonces(secret []byte, period time.Duration) *Nonces {
	if period <= 0 {
		period = time.Minute
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("bridgekeeper dpop nonce v1"))
	return &Nonces{key: m.Sum(nil), period: period}
}

func (n *Nonces) window() uint64 {
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	return uint64(now().UnixNano() / int64(n.period))
}

func (n *Nonces) make(w uint64) string {
	var buf [8 + nonceMACBytes]byte
	binary.BigEndian.PutUint64(buf[:8], w)
	m := hmac.New(sha256.New, n.key)
	m.Write(buf[:8])
	copy(buf[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

// Current is the nonce to hand out now (in the DPoP-Nonce header).
func (n *Nonces) Current() string { return n.make(n.window()) }

// Valid reports whether nonce was issued by a replica sharing the secret in
// this window or the previous one.
func (n *Nonces) Valid(nonce string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+nonceMACBytes {
		return false
	}
	w, now := binary.BigEndian.Uint64(raw[:8]), n.window()
	if w != now && w+1 != now {
		return false
	}
	return hmac.Equal([]byte(n.make(w)), []byte(nonce))
}

// Check is a Verifier.Nonce hook requiring a valid nonce.
func (n *Nonces) Check(_ context.Context, nonce string) error {
	if !n.Valid(nonce) {
		return ErrNonce
	}
	return nil
}
