package storage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// fosite stores an authorization's PKCE challenge and OpenID Connect
// session as requests of their own (pkce_requests, oidc_requests): written
// at the authorization, read and deleted when its code is redeemed. They
// are the authorization code's request but for the form keys fosite keeps
// for each, so when the three agree on everything else,
// prepareCreateAuthorizeCode stores them as one row of authorize_codes
// carrying the other two forms (pkce_form, oidc_form). The PKCE and OpenID
// Connect methods look there first, then in their own tables; deleting a
// part clears its form. A token request that reads the code anyway
// (a unit: TokenStore.WithUnit) then gets both parts without a query, and the
// authorization writes one row instead of three.

// encodedRequest is a fosite request encoded for storage when it was
// handed over (fosite goes on changing the shared session afterwards).
type encodedRequest struct {
	row requestRow
}

// encodeAuthorizeCodeSession encodes what createAuthorizeCodeSession stores.
func encodeAuthorizeCodeSession(signature string, req fosite.Requester) (encodedRequest, error) {
	r, err := newRequestRow(signature, req, fosite.AuthorizeCode)
	return encodedRequest{r}, err
}

// encodePKCERequestSession encodes what createPKCERequestSession stores
// (under the code's signature, like the code).
func encodePKCERequestSession(signature string, req fosite.Requester) (encodedRequest, error) {
	return encodeAuthorizeCodeSession(signature, req)
}

// encodeOpenIDConnectSession encodes what createOpenIDConnectSession stores
// (under a hash of the code).
func encodeOpenIDConnectSession(authorizeCode string, req fosite.Requester) (encodedRequest, error) {
	return encodeAuthorizeCodeSession(oidcKey(authorizeCode), req)
}

// prepareCreateAuthorizeCode stores an authorization code with its PKCE
// request and OpenID Connect session (either may be nil): in the code's
// row when they are the same request but for the form, else as
// createAuthorizeCodeSession, createPKCERequestSession and
// createOpenIDConnectSession would.
func (s *Store) prepareCreateAuthorizeCode(code encodedRequest, pkce, oidc *encodedRequest) (preparedWrite, error) {
	var forms [2]*string // pkce_form, oidc_form
	var apart []preparedWrite
	for i, part := range []struct {
		req         *encodedRequest
		table, kind string
	}{{pkce, tablePKCE, "pkce request"}, {oidc, tableOIDC, "openid connect session"}} {
		switch {
		case part.req == nil:
		case sameButForm(&code.row, &part.req.row):
			forms[i] = &part.req.row.Form
		default:
			w, err := s.prepareRowInsert(part.kind, tokenSQL[part.table].insert, part.req.row)
			if err != nil {
				return nil, err
			}
			apart = append(apart, w)
		}
	}
	w, err := s.prepareRowInsert("authorize code", sqlInsertCodeWithParts, code.row, forms[0], forms[1])
	if err != nil {
		return nil, err
	}
	writes := append([]preparedWrite{w}, apart...)
	return func(ctx context.Context) error {
		for _, w := range writes {
			if err := w(ctx); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

var sqlInsertCodeWithParts = "INSERT INTO " + tableCodes + " (" + codeColumns + ") VALUES (?" + strings.Repeat(", ?", 14) + ")"

// sameButForm reports whether two encoded requests are the same request
// but for the form and the key they are stored under.
func sameButForm(a, b *requestRow) bool {
	return a.RequestID == b.RequestID && a.RequestedAt.Equal(b.RequestedAt) && a.ClientID == b.ClientID &&
		slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.GrantedScopes, b.GrantedScopes) &&
		slices.Equal(a.Audiences, b.Audiences) && slices.Equal(a.GrantedAudiences, b.GrantedAudiences) &&
		a.SessionData == b.SessionData && a.Subject == b.Subject && a.Active == b.Active &&
		equalTimes(a.ExpiresAt, b.ExpiresAt)
}

func equalTimes(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// codePart loads the part of an authorization that a code's row carries
// (its form picked by form): ok is false when there is no such code or
// it does not carry the part.
func (s *Store) codePart(ctx context.Context, codeSignature string, form func(*codeRow) *string, session fosite.Session) (req fosite.Requester, ok bool, err error) {
	row, err := loadRow[codeRow](ctx, s, "authorize code", codeSignature)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	f := form(row)
	if f == nil {
		return nil, false, nil
	}
	r := row.requestRow
	r.Form = *f
	req, err = s.requestOf(ctx, "authorize code", &r, session)
	return req, err == nil, err
}

func pkceForm(r *codeRow) *string { return r.PKCEForm }
func oidcForm(r *codeRow) *string { return r.OIDCForm }

const (
	sqlClearCodePKCE = "UPDATE " + tableCodes + " SET pkce_form = NULL WHERE signature = ? AND pkce_form IS NOT NULL"
	sqlClearCodeOIDC = "UPDATE " + tableCodes + " SET oidc_form = NULL WHERE signature = ? AND oidc_form IS NOT NULL"
)

// clearCodePart removes a part from a code's row (clear is one of the
// statements above); a row without it is left alone.
func (s *Store) clearCodePart(ctx context.Context, codeSignature, clear string) error {
	if unstorable(codeSignature) {
		return nil
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := s.runner(db).exec(ctx, clear, codeSignature); err != nil {
		return s.wrap("clear a part of an authorize code", err)
	}
	return nil
}

// withAuthorizeCodeSignature returns a Store that finds the OpenID Connect
// session a code's row carries: sig gives the signature a code is stored
// under (fosite's authorization code strategy). Without it, OpenID Connect
// sessions are looked up in their own table only.
func (s *Store) withAuthorizeCodeSignature(sig func(code string) string) *Store {
	c := *s
	c.codeSignature = sig
	return &c
}
