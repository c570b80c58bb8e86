package storage_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// In a unit (TokenStore.WithUnit) a token row is read from the database
// once; a miss is not remembered, each read gets its own copy, and reads
// inside a transaction always query.
func TestReadMemo(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, ts, req := openWithRequest(t, b)
			ctx := context.Background()
			if err := ts.CreateAuthorizeCodeSession(ctx, "code-1", req); err != nil {
				t.Fatal(err)
			}

			memo, end := ts.WithUnit(ctx)
			defer end()
			first, err := ts.GetAuthorizeCodeSession(memo, "code-1", &openid.DefaultSession{})
			if err != nil {
				t.Fatal(err)
			}
			first.GrantScope("changed-by-the-caller")
			if err := ts.InvalidateAuthorizeCodeSession(ctx, "code-1"); err != nil {
				t.Fatal(err)
			}

			again, err := ts.GetAuthorizeCodeSession(memo, "code-1", &openid.DefaultSession{})
			if err != nil {
				t.Fatalf("second read in the memo's context: %v, want the first read's row", err)
			}
			if got := again.GetGrantedScopes(); !slices.Equal(got, fosite.Arguments{"openid"}) {
				t.Errorf("second read's granted scopes %v: the first reader's change leaked into it", got)
			}
			if sess := again.GetSession().(*openid.DefaultSession); sess.Subject != "user-1" {
				t.Errorf("second read's session subject %q, want user-1 (decoded again)", sess.Subject)
			}
			if _, err := ts.GetAuthorizeCodeSession(ctx, "code-1", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
				t.Errorf("read without the memo: %v, want ErrInvalidatedAuthorizeCode", err)
			}
			txCtx, err := s.BeginTX(memo)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.GetAuthorizeCodeSession(txCtx, "code-1", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
				t.Errorf("read in a transaction: %v, want ErrInvalidatedAuthorizeCode (transactions always query)", err)
			}
			if err := s.Rollback(txCtx); err != nil {
				t.Fatal(err)
			}

			if _, err := ts.GetAuthorizeCodeSession(memo, "code-2", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("unknown code: %v, want ErrNotFound", err)
			}
			req.ID = "req-2"
			if err := ts.CreateAuthorizeCodeSession(ctx, "code-2", req); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.GetAuthorizeCodeSession(memo, "code-2", &openid.DefaultSession{}); err != nil {
				t.Errorf("code created after a miss: %v (a miss must not be remembered)", err)
			}
		})
	}
}

// A rotation in a unit takes the signature of the old access token from
// the refresh token's row the unit read, and still only succeeds when no
// one rotated the token since that read: the loser gets ErrInactiveToken
// and writes nothing; the winner deactivates the old access token.
func TestRotateAfterMemoRead(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			_, ts, req := openWithRequest(t, b)
			ctx := context.Background()
			for _, err := range []error{ts.CreateAccessTokenSession(ctx, "at-1", req), ts.CreateRefreshTokenSession(ctx, "rt-1", "at-1", req)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			rotate := func(unit context.Context, newAccess, newRefresh string) error {
				if _, err := ts.GetRefreshTokenSession(unit, "rt-1", &openid.DefaultSession{}); err != nil {
					return err
				}
				return ts.Run(unit, func(ctx context.Context) error {
					if err := ts.RotateRefreshToken(ctx, "req-1", "rt-1"); err != nil {
						return err
					}
					if err := ts.CreateAccessTokenSession(ctx, newAccess, req); err != nil {
						return err
					}
					return ts.CreateRefreshTokenSession(ctx, newRefresh, newAccess, req)
				})
			}
			loser, endLoser := ts.WithUnit(ctx)
			defer endLoser()
			if _, err := ts.GetRefreshTokenSession(loser, "rt-1", &openid.DefaultSession{}); err != nil {
				t.Fatal(err)
			}
			winner, endWinner := ts.WithUnit(ctx)
			defer endWinner()
			if err := rotate(winner, "at-2", "rt-2"); err != nil {
				t.Fatalf("first rotation: %v", err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, "at-1", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrInactiveToken) {
				t.Errorf("old access token after the rotation: %v, want ErrInactiveToken", err)
			}
			if err := rotate(loser, "at-3", "rt-3"); !errors.Is(err, fosite.ErrInvalidGrant) && !errors.Is(err, fosite.ErrInactiveToken) {
				t.Errorf("second rotation from a stale read: %v, want the token inactive", err)
			}
			if _, err := ts.GetRefreshTokenSession(ctx, "rt-3", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("the losing rotation's refresh token: %v, want ErrNotFound", err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, "at-2", &openid.DefaultSession{}); err != nil {
				t.Errorf("the winner's access token after the losing rotation: %v, want active", err)
			}
		})
	}
}

// openWithRequest opens the backend with a client "app" and returns a
// request of it (id req-1, subject user-1) to store.
func openWithRequest(t *testing.T, b storagetest.Backend) (*storage.Store, *storage.TokenStore, *fosite.Request) {
	t.Helper()
	s, _ := b.Open(t)
	ctx := context.Background()
	if err := s.CreateClient(ctx, &storage.Client{ID: "app", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	client, err := s.GetClient(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	return s, s.TokenStore(storage.TokenStoreConfig{}), &fosite.Request{ID: "req-1", Client: client,
		GrantedScope: fosite.Arguments{"openid"}, Session: &openid.DefaultSession{Subject: "user-1"}}
}
