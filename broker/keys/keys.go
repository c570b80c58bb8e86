// Package keys manages the broker's JWT signing keys: it generates them,
// keeps their private halves encrypted in storage, rotates them on a
// schedule and serves the public JWKS document from memory.
//
// At any time there is one current key, which signs, and one next key, which
// is already published in the JWKS but does not sign yet, so relying parties
// that cache the JWKS know a key before it signs anything. Rotation promotes
// the next key, retires the old current key and creates a new next key. A
// retired key stays published until every token it may have signed has
// expired, then it is deleted.
//
// Several replicas may share one database: every state change is a row
// insert or a conditional update, so concurrent starts and rotations end
// with one current and one next key, and each replica picks up the others'
// changes when it reloads.
package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Signing algorithms.
const (
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256 over an RSA-2048 key
	ES256 = "ES256" // ECDSA P-256 with SHA-256
)

// Defaults for zero Options fields.
const (
	DefaultRotationPeriod   = 720 * time.Hour
	DefaultMaxTokenLifetime = 24 * time.Hour
	DefaultReloadInterval   = 30 * time.Second
)

// removalSlack is added to a retired key's publication time, on top of the
// longest token lifetime and the reload interval, for clock skew between
// replicas.
const removalSlack = 5 * time.Minute

// Store is the part of storage the manager uses; *storage.Store satisfies it.
type Store interface {
	ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	CreateSigningKey(ctx context.Context, k *storage.SigningKey) error
	RetireSigningKey(ctx context.Context, kid string, retiredAt, removeAt time.Time) (bool, error)
	DeleteSigningKey(ctx context.Context, kid string) error
}

// Options configure a Manager.
type Options struct {
	// Algorithm of new keys: RS256 (the default, RSA-2048) or ES256 (P-256).
	Algorithm string
	// EncryptionKey is the 32-byte AES-256-GCM key that encrypts private
	// keys at rest (derive it with secret.PurposeKeyEncryption).
	EncryptionKey []byte
	// RotationPeriod is how long a key signs before the next takes over;
	// zero means DefaultRotationPeriod, a negative value disables scheduled
	// rotation (Rotate still works).
	RotationPeriod time.Duration
	// MaxTokenLifetime is the longest lifetime of any JWT a key signs; a
	// retired key stays in the JWKS this long plus a margin. Zero means
	// DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// ReloadInterval is how often Run re-reads storage to see other
	// replicas' changes; zero means DefaultReloadInterval.
	ReloadInterval time.Duration
	// Logger receives key lifecycle events; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// State is a key's place in its lifecycle.
type State string

// Key states.
const (
	StateCurrent State = "current" // signs new tokens
	StateNext    State = "next"    // published, signs after the next rotation
	StateRetired State = "retired" // published until RemoveAt, signs nothing
)

// Info describes one key, for `bridgekeeper key list`.
type Info struct {
	KID       string
	Algorithm string
	State     State
	Created   time.Time
	// Activated is when the key started signing (current key), when it is
	// scheduled to (next key; zero when scheduled rotation is off), or the
	// activation time recorded when it was created (retired keys).
	Activated time.Time
	Retired   time.Time // zero unless retired
	RemoveAt  time.Time // zero unless retired
}

// Manager holds the signing keys in memory. Its read methods (SigningKey,
// JWKS, PublicKey, Algorithm) are lock-free and safe for concurrent use;
// changes (Reload, Rotate, Run) are serialised inside one Manager and
// coordinated with other replicas through the store.
type Manager struct {
	store  Store
	opts   Options
	margin time.Duration // added to MaxTokenLifetime for a retired key's RemoveAt
	log    *slog.Logger

	state atomic.Pointer[keyState]

	mu     sync.Mutex              // serialises changes; guards loaded
	loaded map[string]*keyMaterial // decrypted keys by kid

	// For tests: Run takes its ticks from here when set, and reports each
	// finished tick on ticked.
	ticks  <-chan time.Time
	ticked chan<- error
}

// New loads the signing keys from store. When there is no current key it
// creates one, active at once, and it always keeps a next key published. It
// fails with a clear error when a stored key cannot be decrypted with
// opts.EncryptionKey (a changed system secret).
func New(ctx context.Context, store Store, opts Options) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: nil store")
	}
	switch opts.Algorithm {
	case "":
		opts.Algorithm = RS256
	case RS256, ES256:
	default:
		return nil, fmt.Errorf("keys: unsupported signing algorithm %q (want RS256 or ES256)", opts.Algorithm)
	}
	if len(opts.EncryptionKey) != 32 {
		return nil, fmt.Errorf("keys: encryption key must be 32 bytes, got %d", len(opts.EncryptionKey))
	}
	if opts.RotationPeriod == 0 {
		opts.RotationPeriod = DefaultRotationPeriod
	}
	if opts.MaxTokenLifetime < 0 {
		return nil, errors.New("keys: negative MaxTokenLifetime")
	}
	if opts.MaxTokenLifetime == 0 {
		opts.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if opts.ReloadInterval < 0 {
		return nil, errors.New("keys: negative ReloadInterval")
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		store: store,
		opts:  opts,
		// A replica that has not reloaded yet may sign with a retired key
		// for up to one reload interval after another replica retired it.
		margin: opts.ReloadInterval + removalSlack,
		log:    opts.Logger,
		loaded: make(map[string]*keyMaterial),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.sync(ctx, true); err != nil {
		return nil, err
	}
	if cur := m.state.Load().current; cur != nil && cur.alg != opts.Algorithm {
		m.log.Warn("the current signing key uses another algorithm than configured; new keys use the configured one, which signs from the second rotation on",
			"kid", cur.kid, "current", cur.alg, "configured", opts.Algorithm)
	}
	return m, nil
}

// SigningKey returns the current private key for fosite's JWT signer: a
// go-jose v3 JSONWebKey with Key (*rsa.PrivateKey or *ecdsa.PrivateKey),
// KeyID, Algorithm and Use "sig". The value is shared: do not modify it.
func (m *Manager) SigningKey() *josev3.JSONWebKey {
	return m.state.Load().current.signing
}

// JWKS returns the public JWKS document (the current, next and retired but
// not yet removed keys) and its strong ETag (quoted). Both are rebuilt only
// when the keys change; the slice is shared: do not modify it.
func (m *Manager) JWKS() (doc []byte, etag string) {
	s := m.state.Load()
	return s.jwks, s.etag
}

// PublicKey returns the public key and algorithm of a published key (current,
// next or retired but not removed), for verifying tokens such as an
// id_token_hint by their kid.
func (m *Manager) PublicKey(kid string) (crypto.PublicKey, string, bool) {
	k, ok := m.state.Load().byKID[kid]
	if !ok {
		return nil, "", false
	}
	return k.public, k.alg, true
}

// Algorithm returns the algorithm of the current signing key, which is the
// configured one except during a switch of algorithm (see New).
func (m *Manager) Algorithm() string {
	return m.state.Load().current.alg
}

// List reads storage and describes every stored key, current key first,
// then the next key, then retired keys, newest first.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	rows, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	v := classify(rows, m.opts.Now())
	out := make([]Info, 0, len(rows))
	info := func(r *storage.SigningKey, st State) Info {
		i := Info{KID: r.KID, Algorithm: r.Algorithm, State: st, Created: r.CreatedAt, Activated: r.ActivateAt}
		if r.RetiredAt != nil {
			i.Retired = *r.RetiredAt
		}
		if r.RemoveAt != nil {
			i.RemoveAt = *r.RemoveAt
		}
		return i
	}
	if v.current != nil {
		i := info(v.current, StateCurrent)
		if v.next != nil && v.next.CreatedAt.After(v.current.CreatedAt) {
			// A rotation creates the new next key as it promotes this one.
			i.Activated = v.next.CreatedAt
		} else if now := m.opts.Now(); i.Activated.After(now) {
			i.Activated = now
		}
		out = append(out, i)
	}
	if v.next != nil {
		i := info(v.next, StateNext)
		i.Activated = time.Time{}
		if m.opts.RotationPeriod > 0 {
			i.Activated = v.next.CreatedAt.Add(m.opts.RotationPeriod)
		}
		out = append(out, i)
	}
	for j := len(v.retired) - 1; j >= 0; j-- {
		out = append(out, info(v.retired[j], StateRetired))
	}
	for j := len(v.surplus) - 1; j >= 0; j-- { // retired at the next reload
		out = append(out, info(v.surplus[j], StateNext))
	}
	return out, nil
}
