package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Keys no text column can hold are "not found", never a database error
// (found by fuzzing the token endpoint: a NUL byte broke the SQL on SQLite).
func TestUnstorableKeysAreNotFound(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			ts := s.TokenStore(storage.TokenStoreConfig{})
			ctx := context.Background()
			for _, key := range []string{".\x00", "a\x00b", "\xff\xfe", "x\xc3"} {
				sess := &openid.DefaultSession{}
				for name, err := range map[string]error{
					"code":    second(ts.GetAuthorizeCodeSession(ctx, key, sess)),
					"access":  second(ts.GetAccessTokenSession(ctx, key, sess)),
					"refresh": second(ts.GetRefreshTokenSession(ctx, key, sess)),
					"pkce":    second(ts.GetPKCERequestSession(ctx, key, sess)),
					"client":  second(s.GetClient(ctx, key)),
					"user":    second(s.GetUser(ctx, key)),
					"email":   second(s.GetUserByEmail(ctx, key+"@example.com")),
					"ident":   second(s.GetIdentity(ctx, "okta", key)),
				} {
					if !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, fosite.ErrNotFound) {
						t.Errorf("%s lookup of %q: %v, want not found", name, key, err)
					}
				}
				if err := ts.DeleteAccessTokenSession(ctx, key); err != nil {
					t.Errorf("delete access token %q: %v", key, err)
				}
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }
