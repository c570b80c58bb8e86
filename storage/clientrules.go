package storage

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/bridgekeeper/bridgekeeper/internal/redirecturi"
)

// The registration rules of a client live here, beside the data, so that
// every way of registering one — the CLI, code calling CreateClient or
// UpdateClient, a future admin API — applies the same rules: a client that
// breaks them is never stored.

// ErrInvalidClient is matched (errors.Is) by every error of a client that
// breaks a registration rule.
var ErrInvalidClient = errors.New("storage: invalid client")

// clientGrantTypes are the grants a client may register.
var clientGrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

// Defaults filled in by PrepareClient.
var (
	defaultClientGrantTypes = []string{"authorization_code", "refresh_token"}
	defaultClientScopes     = []string{"openid", "profile", "email", "offline_access"}
)

// MinClientSecretLength is the length under which a client secret given by
// an operator can be guessed (the broker generates 43 characters, 256 bits).
const MinClientSecretLength = 32

// Registration fields named in ClientError.Field (the RFC 7591 names).
const (
	FieldClientID               = "client_id"
	FieldGrantTypes             = "grant_types"
	FieldRedirectURIs           = "redirect_uris"
	FieldPostLogoutRedirectURIs = "post_logout_redirect_uris"
	FieldAllowedOrigins         = "allowed_origins"
	FieldAuthMethod             = "token_endpoint_auth_method"
	FieldScopes                 = "scope"
	FieldAudiences              = "audiences"
	FieldDefaultAudiences       = "default_audiences"
	FieldSecret                 = "client_secret"
)

// ClientError is one broken registration rule: the field, the offending
// value (empty when the rule concerns the field as a whole) and why.
type ClientError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ClientError) Error() string {
	if e.Value != "" {
		return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
	}
	return e.Field + ": " + e.Reason
}

// Is makes every ClientError match ErrInvalidClient.
func (e *ClientError) Is(target error) bool { return target == ErrInvalidClient }

// PrepareClient fills the defaults a registration leaves out and checks
// every rule that does not need the secret, so that a caller can refuse a
// registration before it makes a secret. It changes c in place: Name
// defaults to the id, GrantTypes to authorization_code and refresh_token,
// Scopes to openid profile email offline_access, TokenEndpointAuthMethod to
// none (public) or client_secret_basic; ResponseTypes follow the grants
// (code exactly when authorization_code is allowed); lists lose empty and
// repeated entries, allowed origins their trailing slash; every default
// audience is an audience too. The error joins one *ClientError per broken
// rule (errors.Join), or is nil. Applying it twice changes nothing more.
//
// The rules: a grant is authorization_code, refresh_token or
// client_credentials, and authorization_code needs a redirect URI; the id
// is printable text; a public client cannot use client_credentials and
// authenticates with none (it must use PKCE S256, which the broker requires
// of every public client), a confidential one with client_secret_basic or
// client_secret_post; redirect and post-logout redirect URIs pass
// redirecturi.Check (absolute, no fragment, no userinfo, http only on a
// loopback host); an allowed origin is scheme://host[:port] (http or
// https) and nothing more; scopes and audiences are single tokens (no
// spaces, quotes, backslashes or control characters: they travel
// space-separated).
func PrepareClient(c *Client) error {
	var errs []error
	bad := func(field, value, reason string) {
		errs = append(errs, &ClientError{Field: field, Value: value, Reason: reason})
	}
	if c.ID == "" {
		bad(FieldClientID, "", "required")
	} else if unstorable(c.ID) || !printable(c.ID) {
		bad(FieldClientID, c.ID, "must be printable text")
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if len(dedupe(c.GrantTypes)) == 0 {
		c.GrantTypes = slices.Clone(defaultClientGrantTypes)
	}
	if len(dedupe(c.Scopes)) == 0 {
		c.Scopes = slices.Clone(defaultClientScopes)
	}
	c.GrantTypes = dedupe(c.GrantTypes)
	for _, g := range c.GrantTypes {
		if !slices.Contains(clientGrantTypes, g) {
			bad(FieldGrantTypes, g, "supported grants are "+strings.Join(clientGrantTypes, ", "))
		}
	}
	for _, list := range []*[]string{&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.Scopes, &c.Audiences, &c.DefaultAudiences} {
		*list = dedupe(*list)
	}
	if slices.Contains(c.GrantTypes, "authorization_code") {
		c.ResponseTypes = []string{"code"}
		if len(c.RedirectURIs) == 0 {
			bad(FieldRedirectURIs, "", "the authorization_code grant needs at least one redirect URI")
		}
	} else {
		c.ResponseTypes = []string{}
	}
	if c.Public {
		if slices.Contains(c.GrantTypes, "client_credentials") {
			bad(FieldGrantTypes, "client_credentials", "a public client cannot use client_credentials: it has no secret")
		}
		switch c.TokenEndpointAuthMethod {
		case "", "none":
			c.TokenEndpointAuthMethod = "none"
		default:
			bad(FieldAuthMethod, c.TokenEndpointAuthMethod, "a public client uses none")
		}
	} else {
		switch c.TokenEndpointAuthMethod {
		case "":
			c.TokenEndpointAuthMethod = "client_secret_basic"
		case "client_secret_basic", "client_secret_post":
		default:
			bad(FieldAuthMethod, c.TokenEndpointAuthMethod, "use client_secret_basic or client_secret_post")
		}
	}
	for _, u := range c.RedirectURIs {
		if err := redirecturi.Check(u); err != nil {
			bad(FieldRedirectURIs, u, err.Error())
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := redirecturi.Check(u); err != nil {
			bad(FieldPostLogoutRedirectURIs, u, err.Error())
		}
	}
	for _, o := range c.AllowedOrigins {
		if !isOrigin(o) {
			bad(FieldAllowedOrigins, o, "an origin is scheme://host[:port], with no path")
		}
	}
	c.AllowedOrigins = trimOrigins(c.AllowedOrigins)
	for _, s := range c.Scopes {
		if !isToken(s) {
			bad(FieldScopes, s, "a scope is one word: no spaces, quotes, backslashes or control characters")
		}
	}
	for _, a := range c.Audiences {
		if !isToken(a) {
			bad(FieldAudiences, a, "an audience is one word: no spaces, quotes, backslashes or control characters")
		}
	}
	for _, a := range c.DefaultAudiences {
		if !isToken(a) {
			bad(FieldDefaultAudiences, a, "an audience is one word: no spaces, quotes, backslashes or control characters")
		} else if !slices.Contains(c.Audiences, a) {
			c.Audiences = append(c.Audiences, a)
		}
	}
	return errors.Join(errs...)
}

// ValidateClient is PrepareClient plus the secret's rule: a confidential
// client has a secret hash, a public one has none. CreateClient and
// UpdateClient apply it, so a client that breaks a rule is never stored.
func ValidateClient(c *Client) error {
	err := PrepareClient(c)
	switch {
	case c.Public && len(c.SecretHash) > 0:
		err = errors.Join(err, &ClientError{Field: FieldSecret, Reason: "a public client has no secret"})
	case !c.Public && len(c.SecretHash) == 0:
		err = errors.Join(err, &ClientError{Field: FieldSecret, Reason: "a confidential client needs a secret (its keyed hash)"})
	}
	return err
}

// CheckClientSecret reports why a client secret an operator chose is weak
// (shorter than MinClientSecretLength), or nil. The store sees only the
// secret's hash, so this rule is the registering tool's to apply.
func CheckClientSecret(plain string) error {
	if len(plain) < MinClientSecretLength {
		return &ClientError{Field: FieldSecret, Reason: fmt.Sprintf(
			"a client secret shorter than %d characters can be guessed; prefer a generated one", MinClientSecretLength)}
	}
	return nil
}

// isOrigin reports whether o is a browser origin in its exact form:
// http or https, a host, an optional port and at most a trailing slash.
func isOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil &&
		(u.Path == "" || u.Path == "/") && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" &&
		!strings.Contains(o, "#")
}

// isToken reports whether s is an RFC 6749 §3.3 scope token: printable
// ASCII but space, '"' and '\'.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= 0x20 || r >= 0x7f || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

// printable reports whether s has no control or space-like characters
// other than a plain space.
func printable(s string) bool {
	for _, r := range s {
		if r != ' ' && (unicode.IsControl(r) || unicode.IsSpace(r)) {
			return false
		}
	}
	return true
}

func trimOrigins(in []string) []string {
	out := make([]string, 0, len(in))
	for _, o := range in {
		out = append(out, strings.TrimSuffix(o, "/"))
	}
	return dedupe(out)
}

// dedupe returns in without empty and repeated entries, in order.
func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
