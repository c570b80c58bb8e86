package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// rs256Signature is what an RS256 JWT's third segment looks like.
func rs256Signature(t *testing.T) string {
	raw := make([]byte, 256)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Access tokens are stored under the SHA-256 of their signature: a
// database reader finds no signature (with it, a JWT's header and claims
// make a working token), and fosite's lookups by signature still find
// them. A database written before (schema version 7, rows keyed by the
// signature itself) is moved over by the migration: its access tokens
// still introspect, and rotating a refresh token issued before the
// upgrade still deactivates its access token.
func TestAccessTokenKeysMigrated(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, err := storage.Open(ctx, b.EmptyDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.MigrateTo(ctx, 7); err != nil {
				t.Fatal(err)
			}
			client := addAppClient(t, s)
			ts := s.TokenStore(storage.TokenStoreConfig{})

			// Before the upgrade: a grant's access and refresh token, and
			// a client's access token alone, as version 7 stored them.
			grantAccess, grantRefresh, lone := rs256Signature(t), "refresh-sig-1", rs256Signature(t)
			if err := ts.CreateAccessTokenSession(ctx, grantAccess, benchRequest(client, "grant-1")); err != nil {
				t.Fatal(err)
			}
			if err := ts.CreateRefreshTokenSession(ctx, grantRefresh, grantAccess, benchRequest(client, "grant-1")); err != nil {
				t.Fatal(err)
			}
			if err := ts.CreateAccessTokenSession(ctx, lone, benchRequest(client, "grant-2")); err != nil {
				t.Fatal(err)
			}
			for _, sig := range []string{grantAccess, lone} {
				if _, err := s.DB().ExecContext(ctx, "UPDATE access_tokens SET signature = ? WHERE signature = ?", sig, storage.AccessKey(sig)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.DB().ExecContext(ctx, "UPDATE refresh_tokens SET access_token_signature = ?", grantAccess); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, lone, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Fatalf("before the migration, a lookup by hash found the old row: %v", err)
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil { // again: nothing hashed twice
				t.Fatal(err)
			}
			for _, sig := range []string{grantAccess, lone} {
				if _, err := ts.GetAccessTokenSession(ctx, sig, openid.NewDefaultSession()); err != nil {
					t.Errorf("an access token issued before the upgrade: %v", err)
				}
			}
			if err := ts.RotateRefreshToken(ctx, "grant-1", grantRefresh); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, grantAccess, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrInactiveToken) {
				t.Errorf("rotating a refresh token issued before the upgrade left its access token: %v, want inactive", err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, lone, openid.NewDefaultSession()); err != nil {
				t.Errorf("the rotation touched another grant's access token: %v", err)
			}

			// During a rolling upgrade, a replica still on version 7 keeps
			// writing rows keyed by the signature. This version does not
			// find such an access token (it introspects as inactive here),
			// but rotating its refresh token here still deactivates it.
			oldAccess, oldRefresh := rs256Signature(t), "refresh-sig-old"
			if err := ts.CreateAccessTokenSession(ctx, oldAccess, benchRequest(client, "grant-old")); err != nil {
				t.Fatal(err)
			}
			if err := ts.CreateRefreshTokenSession(ctx, oldRefresh, oldAccess, benchRequest(client, "grant-old")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB().ExecContext(ctx, "UPDATE access_tokens SET signature = ? WHERE signature = ?", oldAccess, storage.AccessKey(oldAccess)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB().ExecContext(ctx, "UPDATE refresh_tokens SET access_token_signature = ? WHERE signature = ?", oldAccess, oldRefresh); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, oldAccess, openid.NewDefaultSession()); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("an access token an old replica keyed by its signature: %v, want not found", err)
			}
			if err := ts.RotateRefreshToken(ctx, "grant-old", oldRefresh); err != nil {
				t.Fatal(err)
			}
			var active bool
			if err := s.DB().NewRaw("SELECT active FROM access_tokens WHERE signature = ?", oldAccess).Scan(ctx, &active); err != nil || active {
				t.Errorf("rotating an old replica's refresh token left its access token active (%v)", err)
			}

			// New tokens: the same, and no signature in any column.
			fresh := rs256Signature(t)
			if err := ts.CreateAccessTokenSession(ctx, fresh, benchRequest(client, "grant-3")); err != nil {
				t.Fatal(err)
			}
			if err := ts.CreateRefreshTokenSession(ctx, "refresh-sig-3", fresh, benchRequest(client, "grant-3")); err != nil {
				t.Fatal(err)
			}
			if _, err := ts.GetAccessTokenSession(ctx, fresh, openid.NewDefaultSession()); err != nil {
				t.Fatal(err)
			}
			for col, vals := range storagetest.Dump(t, s) {
				for _, v := range vals {
					for _, sig := range []string{grantAccess, lone, fresh} {
						if bytes.Contains(v, []byte(sig)) {
							t.Errorf("%s holds an access token's signature", col)
						}
					}
				}
			}
		})
	}
}
