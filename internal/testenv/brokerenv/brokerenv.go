// Package brokerenv starts a real broker in the test process for tests
// (Start): broker.New over a real store (SQLite, or Postgres with
// storagetest) and real signing keys, served over HTTP on 127.0.0.1 until
// the test ends. It is apart from internal/testenv (processes, binaries,
// tools), so that packages below the broker, such as plugins, use that
// without depending on the broker.
package brokerenv

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/broker/keys"
	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// DefaultSecret is the system secret of a Broker whose options give none.
const DefaultSecret = "dGVzdGVudi1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZjA="

// Options configure Start. The zero value is a broker on a
// fresh SQLite database with RS256 keys, logging nowhere.
type Options struct {
	// Backend is the storage the broker runs on; SQLite when unnamed.
	Backend storagetest.Backend
	// Secret is the system secret (base64 or 32+ characters, as
	// secret.Parse takes it); DefaultSecret when empty.
	Secret string
	// Logger receives the broker's and the keys' logs; discarded when nil.
	Logger *slog.Logger
	// Keys configures the signing keys (Algorithm, RotationPeriod, Now …);
	// EncryptionKey is derived from the secret, and MaxTokenLifetime,
	// when zero, is broker.MaxTokenLifetime of the configuration.
	Keys keys.Options
	// Config, when set, adjusts the broker's configuration before New
	// (lifetimes, GrantObserver, LoginOptions, Mounts …).
	Config func(*broker.Config)
	// Handler, when set, is what the HTTP server serves, given the built
	// broker (e.g. its Server.Handler() wrapped in ops.Wrap);
	// b.Server.Handler() when nil.
	Handler func(b *Broker) http.Handler
}

// Broker is a real broker (broker.New over a real store and real keys)
// served over HTTP on 127.0.0.1 until the test ends.
type Broker struct {
	Issuer string // http://127.0.0.1:PORT
	Store  *storage.Store
	Secret *secret.System
	Keys   *keys.Manager
	Server *broker.Server
}

// Start builds a broker as o says and serves it; it fails the test when
// the broker does not start.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	ctx := context.Background()
	if o.Backend.Name == "" {
		o.Backend = storagetest.Backend{Name: storage.DialectSQLite}
	}
	if o.Secret == "" {
		o.Secret = DefaultSecret
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	store, _ := o.Backend.Open(t)
	sec, err := secret.Parse(o.Secret)
	if err != nil {
		t.Fatalf("brokerenv: system secret: %v", err)
	}
	ts := httptest.NewUnstartedServer(nil)
	b := &Broker{Issuer: "http://" + ts.Listener.Addr().String(), Store: store, Secret: sec}
	cfg := broker.Config{Issuer: b.Issuer, Store: store, Secret: sec, Logger: o.Logger}
	if o.Config != nil {
		o.Config(&cfg)
	}
	ko := o.Keys
	ko.EncryptionKey = sec.Derive(secret.PurposeKeyEncryption)
	if ko.MaxTokenLifetime == 0 {
		ko.MaxTokenLifetime = broker.MaxTokenLifetime(cfg)
	}
	if ko.Logger == nil {
		ko.Logger = o.Logger
	}
	if b.Keys, err = keys.New(ctx, store, ko); err != nil {
		t.Fatalf("brokerenv: signing keys: %v", err)
	}
	cfg.Keys = b.Keys
	if b.Server, err = broker.New(ctx, cfg); err != nil {
		t.Fatalf("brokerenv: broker.New: %v", err)
	}
	ts.Config.Handler = b.Server.Handler()
	if o.Handler != nil {
		ts.Config.Handler = o.Handler(b)
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		b.Server.Close()
	})
	return b
}

// CreateClient stores c, with clientSecret hashed as the broker verifies
// it when clientSecret is not empty (c.SecretHash is then replaced).
func (b *Broker) CreateClient(t testing.TB, c *storage.Client, clientSecret string) {
	t.Helper()
	ctx := context.Background()
	if clientSecret != "" {
		hasher := password.ClientSecretHasher{Key: b.Secret.Derive(secret.PurposeClientSecret)}
		hash, err := hasher.Hash(ctx, []byte(clientSecret))
		if err != nil {
			t.Fatal(err)
		}
		c.SecretHash = hash
	}
	if err := b.Store.CreateClient(ctx, c); err != nil {
		t.Fatalf("brokerenv: create client %s: %v", c.ID, err)
	}
}
