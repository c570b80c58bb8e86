package storage_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// A spent code or refresh token read for a token request counts as a
// replay (fosite then revokes its grant) only when it is authentic, its
// own client presents it and, for a refresh token, the reuse grace has
// passed; else it is not found, with the reason. The HMAC is checked only
// for a spent token: a live token's read, and a read for anything but a
// token request (revocation, introspection), do not check it.
func TestTokenStoreReplayDecisions(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			ctx := context.Background()
			checks := 0
			cfg := storage.TokenStoreConfig{Authentic: func(_ context.Context, token string) error {
				checks++
				if token != "authentic" {
					return errors.New("hmac mismatch")
				}
				return nil
			}}
			ts := s.TokenStore(cfg)
			for _, id := range []string{"app", "other"} {
				if err := s.CreateClient(ctx, &storage.Client{ID: id, Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, Scopes: []string{"openid"}}); err != nil {
					t.Fatal(err)
				}
			}
			app, err := ts.GetClient(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			other, err := ts.GetClient(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			req := &fosite.Request{ID: "req-1", Client: app, Session: &openid.DefaultSession{Subject: "u1"}, Form: url.Values{}}
			for _, step := range []error{
				ts.CreateAuthorizeCodeSession(ctx, "code", req),
				ts.CreateAccessTokenSession(ctx, "at", req),
				ts.CreateRefreshTokenSession(ctx, "rt", "at", req),
				ts.CreateRefreshTokenSession(ctx, "rt-live", "", req),
			} {
				if step != nil {
					t.Fatal(step)
				}
			}
			// presenting is the context of a token request by client
			// presenting token as param.
			presenting := func(client fosite.Client, param, token string) context.Context {
				ar := fosite.NewAccessRequest(&openid.DefaultSession{})
				ar.Client = client
				ar.Form = url.Values{param: {token}}
				return context.WithValue(ctx, fosite.AccessRequestContextKey, ar)
			}
			if _, err := ts.GetRefreshTokenSession(presenting(app, "refresh_token", "forged"), "rt-live", &openid.DefaultSession{}); err != nil || checks != 0 {
				t.Fatalf("live refresh token: %v, %d HMAC checks; want it, and no check (fosite checks a live token)", err, checks)
			}
			if err := ts.RotateRefreshToken(ctx, "req-1", "rt"); err != nil {
				t.Fatal(err)
			}
			if err := ts.InvalidateAuthorizeCodeSession(ctx, "code"); err != nil {
				t.Fatal(err)
			}

			for _, tc := range []struct {
				name           string
				client         fosite.Client
				token          string
				want           error
				wantRequester  bool
				wantHMACChecks int
			}{
				{"forged, own client", app, "forged", storage.ErrForgedToken, false, 1},
				{"forged, other client", other, "forged", storage.ErrForgedToken, false, 1},
				{"authentic, other client", other, "authentic", storage.ErrReplayByOtherClient, false, 1},
				{"authentic, own client: a replay", app, "authentic", fosite.ErrInactiveToken, true, 1},
			} {
				checks = 0
				got, err := ts.GetRefreshTokenSession(presenting(tc.client, "refresh_token", tc.token), "rt", &openid.DefaultSession{})
				if !errors.Is(err, tc.want) || (got != nil) != tc.wantRequester || checks != tc.wantHMACChecks {
					t.Errorf("refresh token, %s: %v %v after %d HMAC checks; want %v, requester %v, %d checks",
						tc.name, got, err, checks, tc.want, tc.wantRequester, tc.wantHMACChecks)
				}
				if tc.want == fosite.ErrInactiveToken {
					continue
				}
				if !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("refresh token, %s: %v is not a fosite.ErrNotFound (fosite would revoke)", tc.name, err)
				}
				checks = 0
				got, err = ts.GetAuthorizeCodeSession(presenting(tc.client, "code", tc.token), "code", &openid.DefaultSession{})
				if !errors.Is(err, tc.want) || got != nil || checks != tc.wantHMACChecks {
					t.Errorf("code, %s: %v %v after %d HMAC checks; want %v", tc.name, got, err, checks, tc.want)
				}
			}

			checks = 0
			got, err := ts.GetRefreshTokenSession(ctx, "rt", &openid.DefaultSession{}) // revocation, introspection
			var rotated *storage.RotatedError
			if !errors.As(err, &rotated) || got == nil || checks != 0 {
				t.Errorf("rotated token outside a token request: %v %v after %d HMAC checks; want it as it is, unchecked", got, err, checks)
			}

			// Within the reuse grace, the own client's authentic replay is
			// not one yet (two tabs refreshing at once).
			graced := s.TokenStore(storage.TokenStoreConfig{Authentic: cfg.Authentic, ReuseGrace: time.Minute})
			if _, err := graced.GetRefreshTokenSession(presenting(app, "refresh_token", "authentic"), "rt", &openid.DefaultSession{}); !errors.Is(err, storage.ErrReuseWithinGrace) {
				t.Errorf("reuse within the grace: %v, want ErrReuseWithinGrace", err)
			}
		})
	}
}
