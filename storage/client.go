package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
)

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
	_ fosite.ResponseModeClient  = (*Client)(nil)
)

// GetID returns the client id.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret returns the keyed hash of the client secret.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRedirectURIs returns the registered redirect URIs.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes returns the allowed grant types (authorization_code when
// none are registered).
func (c *Client) GetGrantTypes() fosite.Arguments {
	if len(c.GrantTypes) == 0 {
		return fosite.Arguments{"authorization_code"}
	}
	return c.GrantTypes
}

// GetResponseTypes returns the allowed response types (code when none are
// registered).
func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return c.ResponseTypes
}

// GetResponseModes returns the response modes every client may ask for:
// query (the default for code), fragment and form_post.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}
}

// GetScopes returns the scopes the client may request.
func (c *Client) GetScopes() fosite.Arguments { return c.Scopes }

// IsPublic reports whether the client has no secret.
func (c *Client) IsPublic() bool { return c.Public }

// GetAudience returns the audiences the client may request.
func (c *Client) GetAudience() fosite.Arguments { return c.Audiences }

// GetRequestURIs returns nil: request_uri is not supported.
func (c *Client) GetRequestURIs() []string { return nil }

// GetJSONWebKeys returns nil: clients do not authenticate with keys.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet { return nil }

// GetJSONWebKeysURI returns "": clients do not authenticate with keys.
func (c *Client) GetJSONWebKeysURI() string { return "" }

// GetRequestObjectSigningAlgorithm returns "": request objects are not
// supported.
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }

// GetTokenEndpointAuthMethod returns the registered method, defaulting to
// "none" for public clients and "client_secret_basic" otherwise.
func (c *Client) GetTokenEndpointAuthMethod() string {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod
	case c.Public:
		return "none"
	default:
		return "client_secret_basic"
	}
}

// GetTokenEndpointAuthSigningAlgorithm returns RS256 (unused: clients
// authenticate with secrets).
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string { return "RS256" }

// normalize replaces nil lists by empty ones so they are stored as [].
func (c *Client) normalize() {
	for _, p := range []*[]string{
		&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.AllowedOrigins, &c.GrantTypes,
		&c.ResponseTypes, &c.Scopes, &c.Audiences, &c.DefaultAudiences,
	} {
		if *p == nil {
			*p = []string{}
		}
	}
}

// now is the current time as stored: UTC, microsecond precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CreateClient checks c against the registration rules (ValidateClient,
// which also fills its defaults), stores it and sets its CreatedAt and
// UpdatedAt. It fails with an error matching ErrInvalidClient (each broken
// rule a *ClientError) when c breaks a rule, and with ErrConflict when the
// id exists.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	if err := ValidateClient(c); err != nil {
		return fmt.Errorf("storage: create client %q: %w", c.ID, err)
	}
	c.normalize()
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(c).Exec(ctx); err != nil {
		return s.wrap(fmt.Sprintf("create client %q", c.ID), err)
	}
	return nil
}

// clientColumns are the columns of Client (a test checks them against bun's
// mapping).
const clientColumns = "id, name, secret_hash, public, token_endpoint_auth_method, redirect_uris, " +
	"post_logout_redirect_uris, allowed_origins, grant_types, response_types, scopes, audiences, " +
	"default_audiences, created_at, updated_at, require_dpop, require_mfa"

// sqlSelectClient loads one client (every token request does, through the
// broker's cache).
const sqlSelectClient = "SELECT " + clientColumns + " FROM clients WHERE id = ?"

// LookupClient loads a client by id.
func (s *Store) LookupClient(ctx context.Context, id string) (*Client, error) {
	if unstorable(id) {
		return nil, notFound("client", id)
	}
	c := new(Client)
	rows, err := s.runner(s.reader(ctx)).query(ctx, sqlSelectClient, id)
	if err == nil {
		err = s.scanOne(ctx, rows, c)
	}
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("client", id)
		}
		return nil, s.wrap(fmt.Sprintf("load client %q", id), err)
	}
	return c, nil
}

// GetClient loads a client for fosite.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.LookupClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]Client, error) {
	var clients []Client
	if err := s.reader(ctx).NewSelect().Model(&clients).Order("id").Scan(ctx); err != nil {
		return nil, s.wrap("list clients", err)
	}
	return clients, nil
}

// UpdateClient replaces a client's stored fields (all but CreatedAt) and
// sets UpdatedAt, under the same rules as CreateClient (an error matching
// ErrInvalidClient stores nothing).
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	if err := ValidateClient(c); err != nil {
		return fmt.Errorf("storage: update client %q: %w", c.ID, err)
	}
	c.normalize()
	c.UpdatedAt = now()
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model(c).ExcludeColumn("created_at").WherePK().Exec(ctx)
	if err != nil {
		return s.wrap(fmt.Sprintf("update client %q", c.ID), err)
	}
	return expectRow(res, "client", c.ID)
}

// DeleteClient removes a client and every code, token and session issued
// to it.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		res, err := db.NewDelete().Model((*Client)(nil)).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return s.wrap(fmt.Sprintf("delete client %q", id), err)
		}
		if err := expectRow(res, "client", id); err != nil {
			return err
		}
		for _, table := range requestTables {
			if _, err := db.NewDelete().TableExpr(table).Where("client_id = ?", id).Exec(ctx); err != nil {
				return s.wrap(fmt.Sprintf("delete client %q: %s", id, table), err)
			}
		}
		if _, err := db.NewDelete().Model((*PendingLogin)(nil)).Where("client_id = ?", id).Exec(ctx); err != nil {
			return s.wrap(fmt.Sprintf("delete client %q: pending logins", id), err)
		}
		return nil
	})
}
