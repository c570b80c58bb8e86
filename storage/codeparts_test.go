package storage_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// A code stored with its PKCE request and OpenID Connect session carries
// them in its row when they are the same request but for the form, and
// stores them apart when they are not; either way each part reads back
// with its own form, and deleting a part removes it.
func TestAuthorizeCodeParts(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			base, _ := b.Open(t)
			s := base
			ts := base.TokenStore(storage.TokenStoreConfig{CodeSignature: func(code string) string { _, sig, _ := strings.Cut(code, "."); return sig }})
			if err := s.CreateClient(ctx, &storage.Client{ID: "app", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, Scopes: []string{"openid"}}); err != nil {
				t.Fatal(err)
			}
			client, err := s.GetClient(ctx, "app")
			if err != nil {
				t.Fatal(err)
			}
			exp := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)
			form := url.Values{"redirect_uri": {"http://127.0.0.1/cb"}, "code_challenge": {"abc"}, "nonce": {"n-1"}, "client_id": {"app"}}
			newRequest := func(id, subject string) *fosite.Request {
				return &fosite.Request{ID: id, Client: client, GrantedScope: fosite.Arguments{"openid"}, Form: form,
					Session: &openid.DefaultSession{Subject: subject, ExpiresAt: map[fosite.TokenType]time.Time{fosite.AuthorizeCode: exp}}}
			}
			store := func(code string, req, oidcReq *fosite.Request) {
				t.Helper()
				sig := strings.SplitN(code, ".", 2)[1]
				// In a unit, as the broker stores an authorization: the code,
				// then fosite's OpenID Connect and PKCE handlers' parts.
				err := ts.Run(ctx, func(ctx context.Context) error {
					if err := ts.CreateAuthorizeCodeSession(ctx, sig, req.Sanitize([]string{"redirect_uri"})); err != nil {
						return err
					}
					if err := ts.CreateOpenIDConnectSession(ctx, code, oidcReq.Sanitize([]string{"nonce"})); err != nil {
						return err
					}
					return ts.CreatePKCERequestSession(ctx, sig, req.Sanitize([]string{"code_challenge"}))
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			rows := func(table string) (n int) {
				t.Helper()
				if err := s.DB().NewRaw("SELECT count(*) FROM "+table).Scan(ctx, &n); err != nil {
					t.Fatal(err)
				}
				return n
			}

			together := newRequest("req-1", "user-1")
			store("key.sig-1", together, together)
			apart := newRequest("req-2", "user-2")
			store("key.sig-2", apart, newRequest("req-2", "someone else")) // the session differs
			if rows("pkce_requests") != 0 || rows("oidc_requests") != 1 {
				t.Fatalf("%d PKCE and %d OpenID Connect rows of their own, want 0 and 1 (only the one that differs)", rows("pkce_requests"), rows("oidc_requests"))
			}

			for _, tc := range []struct{ code, subject, oidcSubject string }{
				{"key.sig-1", "user-1", "user-1"}, {"key.sig-2", "user-2", "someone else"},
			} {
				sig := strings.SplitN(tc.code, ".", 2)[1]
				code, err := ts.GetAuthorizeCodeSession(ctx, sig, &openid.DefaultSession{})
				if err != nil {
					t.Fatal(err)
				}
				if got := code.GetRequestForm(); got.Get("redirect_uri") == "" || got.Has("code_challenge") || got.Has("nonce") {
					t.Errorf("%s: the code's form %v, want its own keys only", tc.code, got)
				}
				pkce, err := ts.GetPKCERequestSession(ctx, sig, &openid.DefaultSession{})
				if err != nil {
					t.Fatal(err)
				}
				if got := pkce.GetRequestForm(); got.Get("code_challenge") != "abc" || got.Has("redirect_uri") || got.Has("nonce") {
					t.Errorf("%s: the PKCE request's form %v", tc.code, got)
				}
				oidc, err := ts.GetOpenIDConnectSession(ctx, tc.code, &fosite.Request{Session: &openid.DefaultSession{}})
				if err != nil {
					t.Fatal(err)
				}
				if got := oidc.GetRequestForm(); got.Get("nonce") != "n-1" || got.Has("code_challenge") {
					t.Errorf("%s: the OpenID Connect session's form %v", tc.code, got)
				}
				if got := oidc.GetSession().(*openid.DefaultSession).Subject; got != tc.oidcSubject {
					t.Errorf("%s: the OpenID Connect session's subject %q, want %q", tc.code, got, tc.oidcSubject)
				}

				if err := ts.DeletePKCERequestSession(ctx, sig); err != nil {
					t.Fatal(err)
				}
				if err := ts.DeleteOpenIDConnectSession(ctx, tc.code); err != nil {
					t.Fatal(err)
				}
				if _, err := ts.GetPKCERequestSession(ctx, sig, &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("%s: PKCE request after its deletion: %v, want ErrNotFound", tc.code, err)
				}
				if _, err := ts.GetOpenIDConnectSession(ctx, tc.code, &fosite.Request{Session: &openid.DefaultSession{}}); !errors.Is(err, fosite.ErrNotFound) {
					t.Errorf("%s: OpenID Connect session after its deletion: %v, want ErrNotFound", tc.code, err)
				}
				if _, err := ts.GetAuthorizeCodeSession(ctx, sig, &openid.DefaultSession{}); err != nil {
					t.Errorf("%s: the code after its parts were deleted: %v", tc.code, err)
				}
			}
		})
	}
}
