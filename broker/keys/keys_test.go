package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	fositejwt "github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// memStore is an in-memory Store with the same conditional semantics as
// the real one: every method is atomic, RetireSigningKey only succeeds on a
// key not yet retired.
type memStore struct {
	mu      sync.Mutex
	rows    map[string]storage.SigningKey
	listErr error
	creates int
}

func newMemStore() *memStore { return &memStore{rows: make(map[string]storage.SigningKey)} }

func (s *memStore) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		return nil, s.listErr
	}
	var out []storage.SigningKey
	for _, r := range s.rows {
		out = append(out, clone(r))
	}
	slices.SortFunc(out, func(a, b storage.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (s *memStore) CreateSigningKey(_ context.Context, k *storage.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[k.KID]; ok {
		return fmt.Errorf("duplicate kid %s", k.KID)
	}
	s.rows[k.KID] = clone(*k)
	s.creates++
	return nil
}

func (s *memStore) RetireSigningKey(_ context.Context, kid string, retiredAt, removeAt time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[kid]
	if !ok || r.RetiredAt != nil {
		return false, nil
	}
	r.RetiredAt, r.RemoveAt = &retiredAt, &removeAt
	s.rows[kid] = r
	return true, nil
}

func (s *memStore) DeleteSigningKey(_ context.Context, kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rows, kid)
	return nil
}

func (s *memStore) get(kid string) (storage.SigningKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[kid]
	return clone(r), ok
}

func clone(r storage.SigningKey) storage.SigningKey {
	r.PublicJWK = bytes.Clone(r.PublicJWK)
	r.PrivateEnc = bytes.Clone(r.PrivateEnc)
	return r
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var testEncKey = bytes.Repeat([]byte{0x42}, 32)

func testOptions(c *clock) Options {
	return Options{
		Algorithm:        ES256,
		EncryptionKey:    testEncKey,
		RotationPeriod:   720 * time.Hour,
		MaxTokenLifetime: time.Hour,
		ReloadInterval:   30 * time.Second,
		Now:              c.Now,
	}
}

func mustNew(t testing.TB, store Store, opts Options) *Manager {
	t.Helper()
	m, err := New(context.Background(), store, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// publishedKIDs parses the JWKS with go-jose v4 and returns its kids in order.
func publishedKIDs(t testing.TB, m *Manager) []string {
	t.Helper()
	doc, _ := m.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("JWKS does not parse: %v\n%s", err, doc)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS holds a private key: %s", doc)
		}
		if k.Use != "sig" || k.Algorithm != m.Algorithm() && k.Algorithm != RS256 && k.Algorithm != ES256 {
			t.Fatalf("JWK %s: use %q alg %q", k.KeyID, k.Use, k.Algorithm)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func states(t testing.TB, m *Manager) map[State][]string {
	t.Helper()
	infos, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[State][]string)
	for _, i := range infos {
		out[i.State] = append(out[i.State], i.KID)
	}
	return out
}

func TestNewCreatesCurrentAndNext(t *testing.T) {
	c := newClock()
	store := newMemStore()
	m := mustNew(t, store, testOptions(c))

	st := states(t, m)
	if len(st[StateCurrent]) != 1 || len(st[StateNext]) != 1 || len(st[StateRetired]) != 0 {
		t.Fatalf("states after New = %v, want one current and one next", st)
	}
	cur, next := st[StateCurrent][0], st[StateNext][0]
	sk := m.SigningKey()
	if sk.KeyID != cur || sk.Algorithm != ES256 || sk.Use != "sig" {
		t.Fatalf("SigningKey = kid %s alg %s use %s; want current %s ES256 sig", sk.KeyID, sk.Algorithm, sk.Use, cur)
	}
	if _, ok := sk.Key.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("SigningKey().Key is %T, want *ecdsa.PrivateKey", sk.Key)
	}
	if got := publishedKIDs(t, m); !slices.Equal(got, []string{cur, next}) {
		t.Fatalf("JWKS kids = %v, want [current next] = %v", got, []string{cur, next})
	}
	// kid is the RFC 7638 thumbprint of the public key.
	pub, alg, ok := m.PublicKey(cur)
	if !ok || alg != ES256 {
		t.Fatalf("PublicKey(current) = %v, %q, %v", pub, alg, ok)
	}
	if thumb, _ := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256); b64(thumb) != cur {
		t.Fatalf("kid %s is not the key's RFC 7638 thumbprint %s", cur, b64(thumb))
	}
	if _, _, ok := m.PublicKey(next); !ok {
		t.Fatal("next key has no PublicKey")
	}
	if _, _, ok := m.PublicKey("nope"); ok {
		t.Fatal("PublicKey of an unknown kid is ok")
	}

	// A second manager on the same store (a restart or another replica)
	// adopts the same keys and creates none.
	before := store.creates
	m2 := mustNew(t, store, testOptions(c))
	if store.creates != before || m2.SigningKey().KeyID != cur {
		t.Fatalf("second New created %d keys, signs with %s", store.creates-before, m2.SigningKey().KeyID)
	}
	d1, e1 := m.JWKS()
	d2, e2 := m2.JWKS()
	if !bytes.Equal(d1, d2) || e1 != e2 {
		t.Fatal("two managers on the same keys serve different JWKS")
	}
}

// Sign as fosite does (its DefaultSigner with our go-jose v3 key), verify as
// a relying party does (go-jose v4 against the served JWKS), for both
// algorithms.
func TestSignWithFositeVerifyWithJWKS(t *testing.T) {
	for _, alg := range []string{RS256, ES256} {
		t.Run(alg, func(t *testing.T) {
			c := newClock()
			opts := testOptions(c)
			opts.Algorithm = alg
			m := mustNew(t, newMemStore(), opts)
			if m.Algorithm() != alg {
				t.Fatalf("Algorithm() = %s", m.Algorithm())
			}
			switch k := m.SigningKey().Key.(type) {
			case *rsa.PrivateKey:
				if alg != RS256 || k.N.BitLen() != 2048 {
					t.Fatalf("%s key is %d-bit RSA", alg, k.N.BitLen())
				}
			case *ecdsa.PrivateKey:
				if alg != ES256 || k.Curve.Params().Name != "P-256" {
					t.Fatalf("%s key is ECDSA %s", alg, k.Curve.Params().Name)
				}
			}
			signer := &fositejwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return m.SigningKey(), nil }}
			token, _, err := signer.Generate(context.Background(), fositejwt.MapClaims{"sub": "alice"}, &fositejwt.Headers{})
			if err != nil {
				t.Fatalf("fosite Generate: %v", err)
			}

			doc, _ := m.JWKS()
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(doc, &set); err != nil {
				t.Fatal(err)
			}
			parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("parse token: %v", err)
			}
			h := parsed.Headers[0]
			if h.KeyID != m.SigningKey().KeyID || h.Algorithm != alg {
				t.Fatalf("token header kid %q alg %q; want %q %q", h.KeyID, h.Algorithm, m.SigningKey().KeyID, alg)
			}
			keys := set.Key(h.KeyID)
			if len(keys) != 1 {
				t.Fatalf("JWKS has %d keys for kid %s", len(keys), h.KeyID)
			}
			var claims josejwt.Claims
			if err := parsed.Claims(keys[0].Key, &claims); err != nil {
				t.Fatalf("verify with JWKS key: %v", err)
			}
			if claims.Subject != "alice" {
				t.Fatalf("sub = %q", claims.Subject)
			}
			// The next key must not verify it.
			next := states(t, m)[StateNext][0]
			if err := parsed.Claims(set.Key(next)[0].Key, &claims); err == nil {
				t.Fatal("token verifies with the next key")
			}
		})
	}
}

func TestEncryptionAtRest(t *testing.T) {
	c := newClock()
	store := newMemStore()
	m := mustNew(t, store, testOptions(c))
	kid := m.SigningKey().KeyID
	row, _ := store.get(kid)

	der, err := x509.MarshalPKCS8PrivateKey(m.SigningKey().Key)
	if err != nil {
		t.Fatal(err)
	}
	priv := m.SigningKey().Key.(*ecdsa.PrivateKey)
	scalar, _ := priv.Bytes()
	for name, secret := range map[string][]byte{"PKCS#8 DER": der, "private scalar": scalar} {
		if bytes.Contains(row.PrivateEnc, secret) || bytes.Contains(row.PublicJWK, secret) {
			t.Errorf("stored row contains the %s", name)
		}
	}
	if bytes.Contains(row.PublicJWK, []byte(`"d"`)) {
		t.Errorf("stored public JWK has a private member: %s", row.PublicJWK)
	}
	if row.Algorithm != ES256 || !row.CreatedAt.Equal(c.Now()) || !row.ActivateAt.Equal(c.Now()) {
		t.Errorf("row alg %s created %v activate %v", row.Algorithm, row.CreatedAt, row.ActivateAt)
	}

	// Another system secret: a clear error at start.
	opts := testOptions(c)
	opts.EncryptionKey = bytes.Repeat([]byte{0x43}, 32)
	_, err = New(context.Background(), store, opts)
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt signing key") || !strings.Contains(err.Error(), "wrong system secret?") {
		t.Fatalf("New with another encryption key: err = %v", err)
	}

	// The ciphertext is bound to its kid: moved to another row, it fails.
	next := states(t, m)[StateNext][0]
	store.mu.Lock()
	r := store.rows[next]
	r.PrivateEnc = bytes.Clone(row.PrivateEnc)
	store.rows[next] = r
	store.mu.Unlock()
	if _, err := New(context.Background(), store, testOptions(c)); err == nil || !strings.Contains(err.Error(), "cannot decrypt signing key "+next) {
		t.Fatalf("New with a swapped ciphertext: err = %v", err)
	}
}

func TestRotationTimeline(t *testing.T) {
	c := newClock()
	store := newMemStore()
	opts := testOptions(c)
	m := mustNew(t, store, opts)
	ctx := context.Background()

	a := m.SigningKey().KeyID
	published := map[string]bool{}
	for _, k := range publishedKIDs(t, m) {
		published[k] = true
	}
	for i := 0; i < 3; i++ {
		c.Advance(24 * time.Hour)
		if err := m.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		signer := m.SigningKey().KeyID
		if !published[signer] {
			t.Fatalf("rotation %d: key %s signs without having been published before", i, signer)
		}
		for _, k := range publishedKIDs(t, m) {
			published[k] = true
		}
		if i == 0 {
			// The first key is retired now and stays until
			// RetiredAt + MaxTokenLifetime + ReloadInterval + 5m.
			row, ok := store.get(a)
			if !ok || row.RetiredAt == nil || !row.RetiredAt.Equal(c.Now()) || row.RemoveAt == nil {
				t.Fatalf("retired key row = %+v, %v", row, ok)
			}
			wantRemove := c.Now().Add(opts.MaxTokenLifetime + opts.ReloadInterval + 5*time.Minute)
			if !row.RemoveAt.Equal(wantRemove) {
				t.Fatalf("RemoveAt = %v, want %v", row.RemoveAt, wantRemove)
			}
		}
	}
	// Rotations 24h apart with MaxTokenLifetime 1h: each Rotate's reload
	// deleted the key retired by the one before.
	st := states(t, m)
	if len(st[StateCurrent]) != 1 || len(st[StateNext]) != 1 || len(st[StateRetired]) != 1 {
		t.Fatalf("states = %v", st)
	}
	if _, ok := store.get(a); ok {
		t.Fatal("first key still stored long after its RemoveAt")
	}
	retired := st[StateRetired][0]
	retiredRow, _ := store.get(retired)
	if _, _, ok := m.PublicKey(retired); !ok || !slices.Contains(publishedKIDs(t, m), retired) {
		t.Fatal("freshly retired key is not published")
	}

	// One second before RemoveAt it stays, at RemoveAt it goes.
	c.Advance(retiredRow.RemoveAt.Sub(c.Now()) - time.Second)
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(publishedKIDs(t, m), retired) {
		t.Fatal("retired key removed before RemoveAt")
	}
	c.Advance(time.Second)
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(publishedKIDs(t, m), retired) {
		t.Fatal("retired key still published at RemoveAt")
	}
	if _, _, ok := m.PublicKey(retired); ok {
		t.Fatal("PublicKey still knows the removed key")
	}
	if _, ok := store.get(retired); ok {
		t.Fatal("removed key still in storage")
	}
	if got := len(publishedKIDs(t, m)); got != 2 {
		t.Fatalf("JWKS has %d keys after removal, want 2", got)
	}
}

func TestJWKSRebuiltOnlyOnChange(t *testing.T) {
	c := newClock()
	m := mustNew(t, newMemStore(), testOptions(c))
	d1, e1 := m.JWKS()
	if len(e1) < 3 || e1[0] != '"' || e1[len(e1)-1] != '"' {
		t.Fatalf("ETag %q is not a quoted strong tag", e1)
	}
	if err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	d2, e2 := m.JWKS()
	if &d1[0] != &d2[0] || e1 != e2 {
		t.Fatal("JWKS rebuilt by a Reload that changed nothing")
	}
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	d3, e3 := m.JWKS()
	if bytes.Equal(d1, d3) || e1 == e3 {
		t.Fatal("JWKS or ETag unchanged after rotation")
	}
}

func TestSigningKeyDoesNotAllocate(t *testing.T) {
	m := mustNew(t, newMemStore(), testOptions(newClock()))
	kid := m.SigningKey().KeyID
	if n := testing.AllocsPerRun(100, func() { _ = m.SigningKey() }); n != 0 {
		t.Fatalf("SigningKey allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = m.JWKS() }); n != 0 {
		t.Fatalf("JWKS allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = m.PublicKey(kid) }); n != 0 {
		t.Fatalf("PublicKey allocates %v times", n)
	}
}

// Replicas starting at once on an empty database must end with one current
// and one next key, and agree on them.
func TestConcurrentNew(t *testing.T) {
	c := newClock()
	store := newMemStore()
	const n = 8
	managers := make([]*Manager, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range managers {
		wg.Go(func() { managers[i], errs[i] = New(context.Background(), store, testOptions(c)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New %d: %v", i, err)
		}
	}
	for _, m := range managers {
		if err := m.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	checkSettled(t, managers)
	// Each New creates at most a current and a next key.
	if store.creates > 2*n {
		t.Fatalf("%d keys created by %d concurrent starts", store.creates, n)
	}
	t.Logf("%d concurrent starts created %d keys", n, store.creates)
}

// Replicas rotating at once: one rotation happens, the others reload.
func TestConcurrentRotate(t *testing.T) {
	c := newClock()
	store := newMemStore()
	const n = 8
	managers := make([]*Manager, n)
	for i := range managers {
		managers[i] = mustNew(t, store, testOptions(c))
	}
	before := managers[0].SigningKey().KeyID
	next := states(t, managers[0])[StateNext][0]
	c.Advance(time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range managers {
		wg.Go(func() { errs[i] = m.Rotate(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Rotate %d: %v", i, err)
		}
	}
	for _, m := range managers {
		if err := m.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	checkSettled(t, managers)
	st := states(t, managers[0])
	if got := st[StateCurrent][0]; got != next {
		t.Fatalf("current after rotation = %s, want the former next %s", got, next)
	}
	if !slices.Equal(st[StateRetired], []string{before}) {
		t.Fatalf("retired = %v, want exactly [%s]: one rotation", st[StateRetired], before)
	}
	if store.creates != 3 {
		t.Fatalf("%d keys created, want 3 (two at start, one by the single rotation)", store.creates)
	}
}

func checkSettled(t *testing.T, managers []*Manager) {
	t.Helper()
	st := states(t, managers[0])
	if len(st[StateCurrent]) != 1 || len(st[StateNext]) != 1 {
		t.Fatalf("states = %v, want one current and one next", st)
	}
	cur, next := st[StateCurrent][0], st[StateNext][0]
	for i, m := range managers {
		if got := m.SigningKey().KeyID; got != cur {
			t.Fatalf("manager %d signs with %s, want %s", i, got, cur)
		}
		kids := publishedKIDs(t, m)
		if !slices.Contains(kids, next) {
			t.Fatalf("manager %d does not publish the next key", i)
		}
		// Every key any manager signed with stays published.
		for _, r := range st[StateRetired] {
			if !slices.Contains(kids, r) {
				t.Fatalf("manager %d does not publish retired key %s", i, r)
			}
		}
	}
}

func TestSurplusKeysRetiredAndPublished(t *testing.T) {
	c := newClock()
	store := newMemStore()
	m := mustNew(t, store, testOptions(c))
	// Another replica's leftover: a third key that is neither retired nor
	// older than the current or next one.
	c.Advance(time.Minute)
	row, _, err := generate(ES256, testEncKey, c.Now(), c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateSigningKey(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := store.get(row.KID)
	if got.RetiredAt == nil {
		t.Fatal("surplus key not retired")
	}
	if !slices.Contains(publishedKIDs(t, m), row.KID) {
		t.Fatal("retired surplus key not published until its RemoveAt")
	}
	if st := states(t, m); len(st[StateCurrent]) != 1 || len(st[StateNext]) != 1 {
		t.Fatalf("states = %v", st)
	}
}

func TestReloadErrorKeepsKeys(t *testing.T) {
	store := newMemStore()
	m := mustNew(t, store, testOptions(newClock()))
	kid := m.SigningKey().KeyID
	doc, _ := m.JWKS()
	store.listErr = errors.New("database is down")
	if err := m.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("Reload err = %v", err)
	}
	d2, _ := m.JWKS()
	if m.SigningKey().KeyID != kid || !bytes.Equal(doc, d2) {
		t.Fatal("keys changed after a failed reload")
	}
}

func TestRunRotatesOnSchedule(t *testing.T) {
	c := newClock()
	store := newMemStore()
	opts := testOptions(c)
	opts.RotationPeriod = 48 * time.Hour
	m := mustNew(t, store, opts)
	ticks := make(chan time.Time)
	ticked := make(chan error)
	m.ticks, m.ticked = ticks, ticked
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	tick := func() {
		t.Helper()
		ticks <- c.Now()
		if err := <-ticked; err != nil {
			t.Fatalf("tick: %v", err)
		}
	}

	first := m.SigningKey().KeyID
	infos, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next, due := infos[1].KID, infos[1].Activated
	if infos[1].State != StateNext || due.Sub(c.Now()).Round(time.Second) != opts.RotationPeriod {
		t.Fatalf("next key info %+v: want activation RotationPeriod from now", infos[1])
	}
	c.Advance(due.Sub(c.Now()) - time.Second)
	tick()
	if m.SigningKey().KeyID != first {
		t.Fatal("rotated before RotationPeriod")
	}
	c.Advance(time.Second)
	tick()
	if got := m.SigningKey().KeyID; got != next {
		t.Fatalf("after RotationPeriod signs with %s, want former next %s", got, next)
	}
	if st := states(t, m); !slices.Equal(st[StateRetired], []string{first}) || len(st[StateNext]) != 1 {
		t.Fatalf("states = %v", st)
	}
	// The schedule restarts from the rotation: no second rotation soon after.
	c.Advance(time.Hour)
	tick()
	if m.SigningKey().KeyID != next {
		t.Fatal("rotated again one hour after a rotation")
	}
	// Past RemoveAt the old key leaves the JWKS and storage.
	c.Advance(opts.MaxTokenLifetime + opts.ReloadInterval + 5*time.Minute)
	tick()
	if slices.Contains(publishedKIDs(t, m), first) {
		t.Fatal("retired key still published after RemoveAt")
	}
	// A missing next key (its creator crashed mid-rotation) is recreated.
	nextNow := states(t, m)[StateNext][0]
	store.DeleteSigningKey(ctx, nextNow)
	tick()
	if st := states(t, m); len(st[StateNext]) != 1 || st[StateNext][0] == nextNow {
		t.Fatalf("next key not recreated: %v", st)
	}
	cancel()
	<-done
}

// Run on its real ticker picks up a rotation made by another replica.
func TestRunReloadsOtherReplicasRotation(t *testing.T) {
	store := newMemStore()
	opts := testOptions(newClock())
	opts.Now = nil
	opts.ReloadInterval = 5 * time.Millisecond
	a := mustNew(t, store, opts)
	b := mustNew(t, store, opts)
	ticked := make(chan error)
	a.ticked = ticked
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if err := b.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := b.SigningKey().KeyID
	for a.SigningKey().KeyID != want {
		if err := <-ticked; err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(publishedKIDs(t, a), publishedKIDs(t, b)) {
		t.Fatal("replicas publish different keys after reload")
	}
}

func TestOptionsValidation(t *testing.T) {
	ctx := context.Background()
	for name, opts := range map[string]Options{
		"no key":        {},
		"short key":     {EncryptionKey: make([]byte, 16)},
		"EdDSA":         {EncryptionKey: testEncKey, Algorithm: "EdDSA"},
		"HS256":         {EncryptionKey: testEncKey, Algorithm: "HS256"},
		"negative life": {EncryptionKey: testEncKey, MaxTokenLifetime: -time.Second},
	} {
		if _, err := New(ctx, newMemStore(), opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	m := mustNew(t, newMemStore(), Options{EncryptionKey: testEncKey})
	if m.Algorithm() != RS256 {
		t.Errorf("default algorithm %s, want RS256", m.Algorithm())
	}
}

func TestRotationDisabled(t *testing.T) {
	c := newClock()
	opts := testOptions(c)
	opts.RotationPeriod = -1
	m := mustNew(t, newMemStore(), opts)
	ticks, ticked := make(chan time.Time), make(chan error)
	m.ticks, m.ticked = ticks, ticked
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	kid := m.SigningKey().KeyID
	c.Advance(10 * 365 * 24 * time.Hour)
	ticks <- c.Now()
	if err := <-ticked; err != nil {
		t.Fatal(err)
	}
	if m.SigningKey().KeyID != kid {
		t.Fatal("rotated with scheduled rotation disabled")
	}
	infos, _ := m.List(ctx)
	if infos[1].State != StateNext || !infos[1].Activated.IsZero() {
		t.Fatalf("next key info = %+v, want no scheduled activation", infos[1])
	}
	if err := m.Rotate(ctx); err != nil || m.SigningKey().KeyID == kid {
		t.Fatalf("manual Rotate with schedule off: %v", err)
	}
	cancel()
	<-done
}

func BenchmarkSigningKey(b *testing.B) {
	m := mustNew(b, newMemStore(), testOptions(newClock()))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m.SigningKey() == nil {
				b.Error("nil key")
			}
		}
	})
}

func BenchmarkJWKS(b *testing.B) {
	m := mustNew(b, newMemStore(), testOptions(newClock()))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if doc, _ := m.JWKS(); len(doc) == 0 {
				b.Error("empty JWKS")
			}
		}
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
