package keys

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

var _ Store = (*storage.Store)(nil)

// openAgain opens another store on dsn, as another replica would.
func openAgain(t *testing.T, dsn string) *storage.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The whole lifecycle on real storage, RS256: creation, encryption at rest,
// a second replica agreeing, rotation, removal.
func TestStorageLifecycle(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			store, dsn := b.Open(t)
			c := newClock()
			opts := testOptions(c)
			opts.Algorithm = RS256
			m := mustNew(t, store, opts)
			kid := m.SigningKey().KeyID

			rows, err := store.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 {
				t.Fatalf("%d stored keys, want 2", len(rows))
			}
			der, _ := x509.MarshalPKCS8PrivateKey(m.SigningKey().Key)
			prime := m.SigningKey().Key.(*rsa.PrivateKey).Primes[0].Bytes()
			for _, r := range rows {
				if bytes.Contains(r.PrivateEnc, der) || bytes.Contains(r.PrivateEnc, prime) {
					t.Fatalf("stored key %s holds the private key in the clear", r.KID)
				}
			}

			other := openAgain(t, dsn)
			m2 := mustNew(t, other, opts)
			if m2.SigningKey().KeyID != kid {
				t.Fatal("a second replica signs with another key")
			}
			d1, e1 := m.JWKS()
			d2, e2 := m2.JWKS()
			if !bytes.Equal(d1, d2) || e1 != e2 {
				t.Fatal("replicas serve different JWKS")
			}
			wrong := opts
			wrong.EncryptionKey = bytes.Repeat([]byte{1}, 32)
			if _, err := New(ctx, other, wrong); err == nil || !strings.Contains(err.Error(), "wrong system secret?") {
				t.Fatalf("New with another secret: %v", err)
			}

			c.Advance(time.Hour)
			if err := m2.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := m.Rotate(ctx); err != nil { // stale view: loses, reloads
				t.Fatal(err)
			}
			if m.SigningKey().KeyID != m2.SigningKey().KeyID || m.SigningKey().KeyID == kid {
				t.Fatal("replicas disagree after rotation")
			}
			st := states(t, m)
			if !slices.Equal(st[StateRetired], []string{kid}) || len(st[StateNext]) != 1 {
				t.Fatalf("states after one rotation = %v", st)
			}
			c.Advance(opts.MaxTokenLifetime + opts.ReloadInterval + 5*time.Minute)
			if err := m.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(publishedKIDs(t, m), kid) {
				t.Fatal("retired key published after RemoveAt")
			}
			if rows, _ := store.ListSigningKeys(ctx); len(rows) != 2 {
				t.Fatalf("%d stored keys after removal, want 2", len(rows))
			}
		})
	}
}

// Replicas (each with its own connection pool) starting on an empty
// database and then rotating at once settle on one current and one next.
func TestStorageConcurrentNewAndRotate(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			_, dsn := b.Open(t)
			c := newClock()
			const n = 4
			stores := make([]*storage.Store, n)
			for i := range stores {
				stores[i] = openAgain(t, dsn)
			}
			managers := make([]*Manager, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range managers {
				wg.Go(func() { managers[i], errs[i] = New(context.Background(), stores[i], testOptions(c)) })
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
			retiredBefore := len(states(t, managers[0])[StateRetired])

			c.Advance(time.Hour)
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
			if got := len(states(t, managers[0])[StateRetired]); got != retiredBefore+1 {
				t.Fatalf("%d retired keys after concurrent Rotate, want %d: exactly one rotation", got, retiredBefore+1)
			}
		})
	}
}
