// Package conformance is the behaviour every storage backend must show:
// CRUD of each entity, expiry and garbage collection, transactions, the
// fosite storage contract, and concurrent refresh-token rotation. Run it
// from a backend's tests:
//
//	for _, b := range storagetest.Backends(t) {
//		t.Run(b.Name, func(t *testing.T) {
//			conformance.Run(t, func(t *testing.T) *storage.Store { s, _ := b.Open(t); return s })
//		})
//	}
package conformance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Run runs the whole suite; open must return a fresh, migrated, empty store
// that it closes at the test's cleanup.
func Run(t *testing.T, open func(t *testing.T) *storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *storage.Store, ts *storage.TokenStore)
	}{
		{"Migrate", testMigrate},
		{"Clients", testClients},
		{"InvalidClientRefused", testInvalidClientRefused},
		{"DeleteClient", testDeleteClient},
		{"Users", testUsers},
		{"UserWritesConcurrently", testUserWritesConcurrently},
		{"DeleteUser", testDeleteUser},
		{"Identities", testIdentities},
		{"BrowserSessions", testBrowserSessions},
		{"PendingLogins", testPendingLogins},
		{"TakePendingLoginConcurrently", testTakePendingLoginConcurrently},
		{"UsePendingLoginConcurrently", testUsePendingLoginConcurrently},
		{"SigningKeys", testSigningKeys},
		{"ActionTokens", testActionTokens},
		{"UseActionTokenConcurrently", testUseActionTokenConcurrently},
		{"RateCounters", testRateCounters},
		{"ClientAssertionJTI", testClientAssertionJTI},
		{"AuthorizeCode", testAuthorizeCode},
		{"AccessToken", testAccessToken},
		{"RefreshToken", testRefreshToken},
		{"RevokeFamily", testRevokeFamily},
		{"PKCE", testPKCE},
		{"OpenIDConnect", testOpenIDConnect},
		{"NilSession", testNilSession},
		{"DeletedClient", testDeletedClient},
		{"RevokeSubjectTokens", testRevokeSubjectTokens},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredMany", testDeleteExpiredMany},
		{"TxRollback", testTxRollback},
		{"TxCommit", testTxCommit},
		{"TxNested", testTxNested},
		{"TxNestedRollback", testTxNestedRollback},
		{"TxLazy", testTxLazy},
		{"TxEach", testTxEach},
		{"ConcurrentRefreshOneTx", testConcurrentRefreshOneTx},
		{"ConcurrentRefresh", testConcurrentRefresh},
		{"ConcurrentCodeExchange", testConcurrentCodeExchange},
		{"ConcurrentRefreshUnits", testConcurrentRefreshUnits},
		{"ConcurrentCodeExchangeUnits", testConcurrentCodeExchangeUnits},
		{"FailedUnitSpendsNothing", testFailedUnitSpendsNothing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s, Tokens(s))
		})
	}
}

// Tokens is the token store the suite tests on s: the type the broker
// hands to fosite, configured as the broker configures it (a client
// cache; authorization codes signed as fosite's HMAC strategy signs them,
// so that a code's row carries its OpenID Connect session). The tokens of
// the suite are no HMAC tokens: the replay checks, which need a token
// request in the context, are the broker's tests'.
func Tokens(s *storage.Store) *storage.TokenStore {
	return s.TokenStore(storage.TokenStoreConfig{
		CodeSignature: func(code string) string {
			_, sig, ok := strings.Cut(code, ".")
			if !ok {
				return ""
			}
			return sig
		},
		ClientCacheTTL: 5 * time.Second,
	})
}

// ctx is the context of one test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// round is a timestamp as the database keeps it (microseconds).
func round(tm time.Time) time.Time { return tm.UTC().Truncate(time.Microsecond) }

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(round(want)) {
		t.Errorf("%s = %v, want %v", what, got, round(want))
	}
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %q", what, got, want)
		return
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %q, want %q", what, got, want)
			return
		}
	}
}

func testMigrate(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	applied, pending, err := s.MigrationStatus(c)
	must(t, err)
	if applied == 0 || pending != 0 {
		t.Fatalf("MigrationStatus = %d applied, %d pending; want all applied", applied, pending)
	}
	must(t, s.Migrate(c)) // idempotent
	again, pending, err := s.MigrationStatus(c)
	must(t, err)
	if again != applied || pending != 0 {
		t.Fatalf("after a second Migrate: %d applied, %d pending; want %d, 0", again, pending, applied)
	}
	must(t, s.Ping(c))
}
