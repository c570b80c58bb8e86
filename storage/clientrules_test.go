package storage_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TestPrepareClientRules: each registration rule, one case at a time. A
// broken rule is reported as a *storage.ClientError naming the field and
// the value, matching storage.ErrInvalidClient.
func TestPrepareClientRules(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client storage.Client
		field  string // "" when the registration is valid
		value  string
		reason string // a part of the reason
	}{
		{"public, loopback http", storage.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:5173/cb"}}, "", "", ""},
		{"public, https", storage.Client{ID: "spa", Public: true, RedirectURIs: []string{"https://app.example/cb"}}, "", "", ""},
		{"public, custom scheme", storage.Client{ID: "app", Public: true, RedirectURIs: []string{"com.example.app:/cb"}}, "", "", ""},
		{"confidential, client_credentials only", storage.Client{ID: "svc", GrantTypes: []string{"client_credentials"}}, "", "", ""},
		{"confidential, client_secret_post", storage.Client{ID: "web", TokenEndpointAuthMethod: "client_secret_post", RedirectURIs: []string{"https://app.example/cb"}}, "", "", ""},
		{"no id", storage.Client{RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldClientID, "", "required"},
		{"id with a newline", storage.Client{ID: "a\nb", RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldClientID, "a\nb", "printable"},
		{"id not UTF-8", storage.Client{ID: "a\xff", RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldClientID, "a\xff", "printable"},
		{"unknown grant", storage.Client{ID: "x", GrantTypes: []string{"password"}, RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldGrantTypes, "password", "supported grants"},
		{"implicit grant", storage.Client{ID: "x", GrantTypes: []string{"implicit"}}, storage.FieldGrantTypes, "implicit", "supported grants"},
		{"code grant without redirect URI", storage.Client{ID: "x", Public: true}, storage.FieldRedirectURIs, "", "at least one"},
		{"public client_credentials", storage.Client{ID: "x", Public: true, GrantTypes: []string{"client_credentials"}}, storage.FieldGrantTypes, "client_credentials", "public client cannot"},
		{"public client_secret_basic", storage.Client{ID: "x", Public: true, TokenEndpointAuthMethod: "client_secret_basic", RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldAuthMethod, "client_secret_basic", "uses none"},
		{"confidential none", storage.Client{ID: "x", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldAuthMethod, "none", "client_secret_basic or client_secret_post"},
		{"confidential private_key_jwt", storage.Client{ID: "x", TokenEndpointAuthMethod: "private_key_jwt", RedirectURIs: []string{"https://a.example/cb"}}, storage.FieldAuthMethod, "private_key_jwt", "client_secret_basic or client_secret_post"},
		{"redirect http non-loopback", storage.Client{ID: "x", RedirectURIs: []string{"http://app.example/cb"}}, storage.FieldRedirectURIs, "http://app.example/cb", "use https"},
		{"redirect http look-alike loopback", storage.Client{ID: "x", RedirectURIs: []string{"http://127.evil.example/cb"}}, storage.FieldRedirectURIs, "http://127.evil.example/cb", "use https"},
		{"redirect relative", storage.Client{ID: "x", RedirectURIs: []string{"/cb"}}, storage.FieldRedirectURIs, "/cb", "absolute"},
		{"redirect fragment", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb#f"}}, storage.FieldRedirectURIs, "https://a.example/cb#f", "fragment"},
		{"redirect userinfo", storage.Client{ID: "x", RedirectURIs: []string{"https://u:p@a.example/cb"}}, storage.FieldRedirectURIs, "https://u:p@a.example/cb", "userinfo"},
		{"post-logout userinfo", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"https://u@a.example/"}}, storage.FieldPostLogoutRedirectURIs, "https://u@a.example/", "userinfo"},
		{"post-logout http", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"http://a.example/"}}, storage.FieldPostLogoutRedirectURIs, "http://a.example/", "use https"},
		{"origin with path", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, AllowedOrigins: []string{"https://a.example/app"}}, storage.FieldAllowedOrigins, "https://a.example/app", "no path"},
		{"origin with query", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, AllowedOrigins: []string{"https://a.example?x"}}, storage.FieldAllowedOrigins, "https://a.example?x", "no path"},
		{"origin with userinfo", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, AllowedOrigins: []string{"https://u@a.example"}}, storage.FieldAllowedOrigins, "https://u@a.example", "no path"},
		{"origin wildcard", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, AllowedOrigins: []string{"*"}}, storage.FieldAllowedOrigins, "*", "scheme://host"},
		{"origin other scheme", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, AllowedOrigins: []string{"ftp://a.example"}}, storage.FieldAllowedOrigins, "ftp://a.example", "scheme://host"},
		{"scope with space", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"openid email"}}, storage.FieldScopes, "openid email", "one word"},
		{"scope with quote", storage.Client{ID: "x", RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{`a"b`}}, storage.FieldScopes, `a"b`, "one word"},
		{"audience with space", storage.Client{ID: "x", GrantTypes: []string{"client_credentials"}, Audiences: []string{"my api"}}, storage.FieldAudiences, "my api", "one word"},
		{"default audience with tab", storage.Client{ID: "x", GrantTypes: []string{"client_credentials"}, DefaultAudiences: []string{"a\tb"}}, storage.FieldDefaultAudiences, "a\tb", "one word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			err := storage.PrepareClient(&c)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("PrepareClient = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, storage.ErrInvalidClient) {
				t.Fatalf("PrepareClient = %v, want an error matching ErrInvalidClient", err)
			}
			var ce *storage.ClientError
			if !errors.As(err, &ce) {
				t.Fatalf("PrepareClient = %v, want a *ClientError", err)
			}
			if ce.Field != tc.field || ce.Value != tc.value || !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("ClientError = %+v, want field %q, value %q, reason with %q", ce, tc.field, tc.value, tc.reason)
			}
		})
	}
}

// TestPrepareClientDefaults: what a registration leaves out is filled in,
// lists lose repeats, empty entries and an origin's trailing slash, the
// response types follow the grants, and applying it twice changes nothing.
func TestPrepareClientDefaults(t *testing.T) {
	c := storage.Client{
		ID: "spa", Public: true,
		RedirectURIs:     []string{"http://127.0.0.1:5173/cb", "", "http://127.0.0.1:5173/cb"},
		AllowedOrigins:   []string{"http://127.0.0.1:5173/", "http://127.0.0.1:5173"},
		DefaultAudiences: []string{"api"},
	}
	if err := storage.PrepareClient(&c); err != nil {
		t.Fatal(err)
	}
	check := func(c storage.Client) {
		t.Helper()
		for _, x := range []struct {
			name      string
			got, want []string
		}{
			{"GrantTypes", c.GrantTypes, []string{"authorization_code", "refresh_token"}},
			{"Scopes", c.Scopes, []string{"openid", "profile", "email", "offline_access"}},
			{"ResponseTypes", c.ResponseTypes, []string{"code"}},
			{"RedirectURIs", c.RedirectURIs, []string{"http://127.0.0.1:5173/cb"}},
			{"AllowedOrigins", c.AllowedOrigins, []string{"http://127.0.0.1:5173"}},
			{"Audiences", c.Audiences, []string{"api"}},
		} {
			if !slices.Equal(x.got, x.want) {
				t.Errorf("%s = %q, want %q", x.name, x.got, x.want)
			}
		}
		if c.Name != "spa" || c.TokenEndpointAuthMethod != "none" {
			t.Errorf("Name %q, auth method %q; want spa, none", c.Name, c.TokenEndpointAuthMethod)
		}
	}
	check(c)
	again := c
	if err := storage.PrepareClient(&again); err != nil {
		t.Fatal(err)
	}
	check(again)

	svc := storage.Client{ID: "svc", GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{"code"}}
	if err := storage.PrepareClient(&svc); err != nil {
		t.Fatal(err)
	}
	if svc.TokenEndpointAuthMethod != "client_secret_basic" || len(svc.ResponseTypes) != 0 {
		t.Errorf("confidential client_credentials client: auth %q, response types %q; want client_secret_basic, none",
			svc.TokenEndpointAuthMethod, svc.ResponseTypes)
	}
}

// TestPrepareClientReportsEveryRule: one error per broken rule, joined.
func TestPrepareClientReportsEveryRule(t *testing.T) {
	c := storage.Client{ID: "x", Public: true, GrantTypes: []string{"password", "client_credentials"},
		RedirectURIs: []string{"http://app.example/cb"}, AllowedOrigins: []string{"https://a.example/p"}}
	err := storage.PrepareClient(&c)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fields = append(fields, e.(*storage.ClientError).Field)
	}
	want := []string{storage.FieldGrantTypes, storage.FieldGrantTypes, storage.FieldRedirectURIs, storage.FieldAllowedOrigins}
	if !slices.Equal(fields, want) {
		t.Errorf("broken rules %q, want %q (%v)", fields, want, err)
	}
}

// TestValidateClientSecret: a confidential client has a secret hash, a
// public one none; an operator's secret shorter than 32 characters is
// reported weak.
func TestValidateClientSecret(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    storage.Client
		ok   bool
	}{
		{"confidential with hash", storage.Client{ID: "a", GrantTypes: []string{"client_credentials"}, SecretHash: []byte("h")}, true},
		{"confidential without hash", storage.Client{ID: "a", GrantTypes: []string{"client_credentials"}}, false},
		{"public without hash", storage.Client{ID: "a", Public: true, RedirectURIs: []string{"https://a.example/cb"}}, true},
		{"public with hash", storage.Client{ID: "a", Public: true, RedirectURIs: []string{"https://a.example/cb"}, SecretHash: []byte("h")}, false},
	} {
		err := storage.ValidateClient(&tc.c)
		var ce *storage.ClientError
		if tc.ok != (err == nil) || (err != nil && (!errors.As(err, &ce) || ce.Field != storage.FieldSecret)) {
			t.Errorf("%s: ValidateClient = %v", tc.name, err)
		}
	}
	if err := storage.CheckClientSecret(strings.Repeat("s", 31)); !errors.Is(err, storage.ErrInvalidClient) {
		t.Errorf("a 31-character secret: %v, want it reported weak", err)
	}
	if err := storage.CheckClientSecret(strings.Repeat("s", 32)); err != nil {
		t.Errorf("a 32-character secret: %v", err)
	}
}
