package oidc

import (
	"context"
	"io"
	"sync"
	"time"
)

// Request is an HTTP request the client asks its transport to send.
type Request struct {
	Method string
	URL    string
	Header map[string]string
	Body   string
}

// Response is the transport's answer: the status code, the headers the
// client reads (names in lower case: dpop-nonce, www-authenticate) and the
// body.
type Response struct {
	Status int
	Header map[string]string
	Body   []byte
}

// Transport sends HTTP requests. In the browser it is fetch; on the host,
// net/http. It returns an error only when no response was received.
type Transport interface {
	Do(ctx context.Context, req Request) (Response, error)
}

// Clock tells the time and makes timers. The browser build uses the real
// clock; tests drive a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SignatureVerifier checks a JWS signature over signed with the public key
// jwk (a JWK as decoded JSON) for the algorithm alg ("RS256", "ES256", …).
// In the browser it is crypto.subtle.verify.
type SignatureVerifier interface {
	Verify(ctx context.Context, alg string, jwk map[string]any, signed, signature []byte) error
}

// Store keeps small values across reloads. Load reports found=false for a
// missing key. In the browser the values are encrypted in IndexedDB.
type Store interface {
	Load(ctx context.Context, key string) (value []byte, found bool, err error)
	Save(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Locker runs fn while holding the named lock, exclusive across every client
// instance sharing the same Store (in the browser: Web Locks).
type Locker interface {
	WithLock(ctx context.Context, name string, fn func(context.Context) error) error
}

// Broadcaster tells the other client instances sharing the Store that the
// session changed (in the browser: BroadcastChannel). They call
// Client.HandleBroadcast with the message.
type Broadcaster interface {
	Broadcast(message string)
}

// ProofKey is the client's DPoP key (RFC 9449): an ECDSA P-256 key pair
// whose private half cannot be read. In the browser it is a WebCrypto key
// generated with extractable: false and kept in IndexedDB.
type ProofKey interface {
	// PublicJWK returns the public key as a JWK (kty EC, crv P-256, x, y),
	// generating the key pair first when there is none.
	PublicJWK(ctx context.Context) (map[string]any, error)
	// Sign returns the ES256 signature of data: r and s, 32 bytes each.
	Sign(ctx context.Context, data []byte) ([]byte, error)
	// Rotate replaces the key pair with a new one (at logout), for every
	// instance sharing it.
	Rotate(ctx context.Context) error
	// Forget drops any copy held in memory: another instance may have
	// rotated the key.
	Forget()
}

// Deps are the client's connections to the outside world. Transport and
// Verifier are required; the others default to the real clock, crypto/rand
// (Random is required in the js/wasm build, which leaves crypto/rand out),
// an in-memory store, an in-process lock and no broadcasting. Without a
// ProofKey the client does not use DPoP.
type Deps struct {
	Transport   Transport
	Verifier    SignatureVerifier
	Clock       Clock
	Random      io.Reader
	Store       Store
	Locker      Locker
	Broadcaster Broadcaster
	ProofKey    ProofKey
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// MemoryStore is a Store that keeps values in memory.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string][]byte{}} }

// Load implements Store.
func (s *MemoryStore) Load(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return append([]byte(nil), v...), ok, nil
}

// Save implements Store.
func (s *MemoryStore) Save(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// localLocker is a Locker for a single client instance.
type localLocker struct{ mu sync.Mutex }

func (l *localLocker) WithLock(ctx context.Context, _ string, fn func(context.Context) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fn(ctx)
}

type noBroadcast struct{}

func (noBroadcast) Broadcast(string) {}
