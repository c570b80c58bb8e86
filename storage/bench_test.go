package storage_test

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// benchStore is a migrated SQLite store with one client.
func benchStore(b *testing.B) (*storage.Store, fosite.Client) {
	b.Helper()
	s, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(b)
	return s, addAppClient(b, s)
}

// addAppClient registers the public client "app" (code and refresh
// grants) and returns it as fosite sees it.
func addAppClient(tb testing.TB, s *storage.Store) fosite.Client {
	tb.Helper()
	ctx := context.Background()
	if err := s.CreateClient(ctx, &storage.Client{
		ID: "app", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline_access"},
	}); err != nil {
		tb.Fatal(err)
	}
	client, err := s.GetClient(ctx, "app")
	if err != nil {
		tb.Fatal(err)
	}
	return client
}

// benchRequest is a request with a realistic session.
func benchRequest(client fosite.Client, id string) *fosite.Request {
	exp := time.Now().Add(time.Hour).UTC()
	return &fosite.Request{
		ID: id, RequestedAt: time.Now().UTC(), Client: client,
		RequestedScope: fosite.Arguments{"openid", "offline_access"}, GrantedScope: fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{}, GrantedAudience: fosite.Arguments{},
		Form: url.Values{"grant_type": {"refresh_token"}, "scope": {"openid offline_access"}},
		Session: &openid.DefaultSession{
			Claims: &jwt.IDTokenClaims{
				Subject: "user-1", Issuer: "http://127.0.0.1:8080", AuthTime: time.Now().UTC(), RequestedAt: time.Now().UTC(),
				Extra: map[string]any{"email": "user@example.com", "email_verified": true, "name": "A User"},
			},
			Headers:   &jwt.Headers{Extra: map[string]any{"kid": "key-1"}},
			Subject:   "user-1",
			ExpiresAt: map[fosite.TokenType]time.Time{fosite.AccessToken: exp, fosite.RefreshToken: exp.Add(24 * time.Hour)},
		},
	}
}

func BenchmarkCreateAccessToken(b *testing.B) {
	s, client := benchStore(b)
	ts := s.TokenStore(storage.TokenStoreConfig{})
	ctx := context.Background()
	req := benchRequest(client, "req")
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ts.CreateAccessTokenSession(ctx, fmt.Sprintf("at-%d", n.Add(1)), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetAccessToken(b *testing.B) {
	s, client := benchStore(b)
	ts := s.TokenStore(storage.TokenStoreConfig{})
	ctx := context.Background()
	if err := ts.CreateAccessTokenSession(ctx, "at", benchRequest(client, "req")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := ts.GetAccessTokenSession(ctx, "at", openid.NewDefaultSession()); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRefresh is the storage work of one refresh grant, as fosite does
// it: load the refresh token outside a transaction, then rotate it and
// store the new pair in one. Each goroutine refreshes its own chain.
func BenchmarkRefresh(b *testing.B) {
	s, client := benchStore(b)
	ts := s.TokenStore(storage.TokenStoreConfig{})
	ctx := context.Background()
	var chains atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		chain := chains.Add(1)
		reqID := fmt.Sprintf("req-%d", chain)
		req := benchRequest(client, reqID)
		current := fmt.Sprintf("rt-%d-0", chain)
		if err := ts.CreateAccessTokenSession(ctx, fmt.Sprintf("at-%d-0", chain), req); err != nil {
			b.Error(err)
			return
		}
		if err := ts.CreateRefreshTokenSession(ctx, current, fmt.Sprintf("at-%d-0", chain), req); err != nil {
			b.Error(err)
			return
		}
		for i := 1; pb.Next(); i++ {
			stored, err := ts.GetRefreshTokenSession(ctx, current, openid.NewDefaultSession())
			if err != nil {
				b.Error(err)
				return
			}
			next, access := fmt.Sprintf("rt-%d-%d", chain, i), fmt.Sprintf("at-%d-%d", chain, i)
			err = s.InTx(ctx, func(ctx context.Context) error {
				if err := ts.RotateRefreshToken(ctx, reqID, current); err != nil {
					return err
				}
				if err := ts.CreateAccessTokenSession(ctx, access, stored); err != nil {
					return err
				}
				return ts.CreateRefreshTokenSession(ctx, next, access, stored)
			})
			if err != nil {
				b.Error(err)
				return
			}
			current = next
		}
	})
}

// BenchmarkFositeRefresh is a whole refresh grant through a fosite provider
// on SQLite (ES256 ID tokens, so storage dominates), each goroutine
// refreshing its own chain. "own-tx" lets fosite's refresh handler run its
// transaction; "outer-tx" wraps NewAccessResponse in one more, as a broker
// may do — the ID token is then signed while the transaction holds
// SQLite's writer.
func BenchmarkFositeRefresh(b *testing.B) {
	for _, outer := range []bool{false, true} {
		name := "own-tx"
		if outer {
			name = "outer-tx"
		}
		b.Run(name, func(b *testing.B) {
			r := newFositeRig(b, storagetest.Backend{Name: storage.DialectSQLite})
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				first, err := r.exchange(r.authorize(b, "bench-user"))
				if err != nil {
					b.Error(err)
					return
				}
				rt, _ := first.GetExtra("refresh_token").(string)
				for pb.Next() {
					var resp fosite.AccessResponder
					if outer {
						resp, err = r.refreshInTx(rt)
					} else {
						resp, err = r.refresh(rt)
					}
					if err != nil {
						b.Error(err)
						return
					}
					rt, _ = resp.GetExtra("refresh_token").(string)
				}
			})
		})
	}
}

// BenchmarkGetClient is the client lookup of every token request.
func BenchmarkGetClient(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.GetClient(ctx, "app"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
