package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/uptrace/bun"
)

// Token tables: every one holds requestRow's columns.
const (
	tableCodes   = "authorize_codes"
	tableAccess  = "access_tokens"
	tableRefresh = "refresh_tokens"
	tablePKCE    = "pkce_requests"
	tableOIDC    = "oidc_requests"
)

// requestTables lists the token tables. Every statement that touches
// several of them goes in this order (refresh tokens before access tokens,
// as rotateRefreshToken does), so concurrent transactions on Postgres lock
// rows in one order and cannot deadlock.
var requestTables = []string{tableCodes, tableRefresh, tableAccess, tablePKCE, tableOIDC}

// The columns of requestRow, and of refreshRow (which adds two), in the
// order the hand-written statements below bind them.
const (
	requestColumns = "signature, request_id, requested_at, client_id, scopes, granted_scopes, audiences, " +
		"granted_audiences, form, session_data, subject, active, expires_at"
	refreshColumns = requestColumns + ", access_token_signature, first_used_at"
	codeColumns    = requestColumns + ", pkce_form, oidc_form"
)

// tokenQueries are the statements on one token table.
type tokenQueries struct {
	insert, selectBySignature, deleteBySignature string
	// selectBySignatureSQLite selects the times as text (+col has no
	// declared type): the SQLite driver would otherwise try several
	// layouts on each before scanRow parses it once.
	selectBySignatureSQLite string
}

// textTimes rewrites the time columns of a column list as SQLite
// expressions that keep their text.
var textTimes = strings.NewReplacer("requested_at", "+requested_at AS requested_at", "expires_at", "+expires_at AS expires_at",
	"first_used_at", "+first_used_at AS first_used_at")

// selectBySignature is the query of a token row by signature for s's
// dialect.
func (s *Store) selectBySignature(table string) string {
	if s.dialect == DialectSQLite {
		return tokenSQL[table].selectBySignatureSQLite
	}
	return tokenSQL[table].selectBySignature
}

// tokenSQL holds each token table's statements (built once: the statement
// caches are keyed by the SQL text).
var tokenSQL = func() map[string]tokenQueries {
	m := map[string]tokenQueries{}
	for _, t := range requestTables {
		cols, n := requestColumns, 13
		if t == tableRefresh {
			cols, n = refreshColumns, 15
		}
		selected := cols
		if t == tableCodes {
			selected = codeColumns // a plain insert leaves the parts NULL (codeparts.go)
		}
		m[t] = tokenQueries{
			insert:                  "INSERT INTO " + t + " (" + cols + ") VALUES (?" + strings.Repeat(", ?", n-1) + ")",
			selectBySignature:       "SELECT " + selected + " FROM " + t + " WHERE signature = ?",
			selectBySignatureSQLite: "SELECT " + textTimes.Replace(selected) + " FROM " + t + " WHERE signature = ?",
			deleteBySignature:       "DELETE FROM " + t + " WHERE signature = ?",
		}
	}
	return m
}()

const (
	sqlRotateRefresh = "UPDATE refresh_tokens SET active = FALSE, first_used_at = COALESCE(first_used_at, ?) " +
		"WHERE signature = ? AND request_id = ? AND active = TRUE RETURNING access_token_signature"
	// SQLite reads the row first (as readThenWrite does); the update
	// repeats the conditions, so of two rotations exactly one changes it.
	sqlActiveRefreshAccess = "SELECT access_token_signature FROM refresh_tokens " +
		"WHERE signature = ? AND request_id = ? AND active = TRUE"
	sqlDeactivateRefresh = "UPDATE refresh_tokens SET active = FALSE, first_used_at = COALESCE(first_used_at, ?) " +
		"WHERE signature = ? AND request_id = ? AND active = TRUE"
	sqlDeactivateAccess = "UPDATE access_tokens SET active = FALSE WHERE signature = ?"
	sqlInvalidateCode   = "UPDATE authorize_codes SET active = FALSE WHERE signature = ? AND active = TRUE"
)

// requestRow is a stored fosite request: one row of a token table.
type requestRow struct {
	Signature        string     `bun:"signature,pk"`
	RequestID        string     `bun:"request_id,notnull"`
	RequestedAt      time.Time  `bun:"requested_at,notnull"`
	ClientID         string     `bun:"client_id,notnull"`
	Scopes           []string   `bun:"scopes,type:text,notnull"`
	GrantedScopes    []string   `bun:"granted_scopes,type:text,notnull"`
	Audiences        []string   `bun:"audiences,type:text,notnull"`
	GrantedAudiences []string   `bun:"granted_audiences,type:text,notnull"`
	Form             string     `bun:"form,notnull"`
	SessionData      string     `bun:"session_data,notnull"`
	Subject          string     `bun:"subject,notnull"`
	Active           bool       `bun:"active,notnull"`
	ExpiresAt        *time.Time `bun:"expires_at"`

	// Client is loaded with the row (one query instead of two); nil when
	// the client was deleted.
	Client *Client `bun:"rel:belongs-to,join:client_id=id"`
}

type codeRow struct {
	bun.BaseModel `bun:"table:authorize_codes"`
	requestRow
	// The form of the authorization's PKCE request and of its OpenID
	// Connect session when the row stands for them too (codeparts.go);
	// nil when it does not.
	PKCEForm *string `bun:"pkce_form"`
	OIDCForm *string `bun:"oidc_form"`
}

type accessRow struct {
	bun.BaseModel `bun:"table:access_tokens"`
	requestRow
}

type refreshRow struct {
	bun.BaseModel `bun:"table:refresh_tokens"`
	requestRow
	AccessTokenSignature string     `bun:"access_token_signature,notnull"`
	FirstUsedAt          *time.Time `bun:"first_used_at"`
}

type pkceRow struct {
	bun.BaseModel `bun:"table:pkce_requests"`
	requestRow
}

type oidcRow struct {
	bun.BaseModel `bun:"table:oidc_requests"`
	requestRow
}

func (r *requestRow) row() *requestRow { return r }
func (*codeRow) table() string         { return tableCodes }
func (*accessRow) table() string       { return tableAccess }
func (*refreshRow) table() string      { return tableRefresh }
func (*pkceRow) table() string         { return tablePKCE }
func (*oidcRow) table() string         { return tableOIDC }

// tokenRow is implemented by pointers to the row types above.
type tokenRow[T any] interface {
	*T
	row() *requestRow
	table() string
}

// detach gives the row its own copies of the lists and times it shares
// with the row it was copied from (the client is shared: it is not
// changed once loaded).
func (r *requestRow) detach() {
	r.Scopes = slices.Clone(r.Scopes)
	r.GrantedScopes = slices.Clone(r.GrantedScopes)
	r.Audiences = slices.Clone(r.Audiences)
	r.GrantedAudiences = slices.Clone(r.GrantedAudiences)
	if r.ExpiresAt != nil {
		exp := *r.ExpiresAt
		r.ExpiresAt = &exp
	}
}

// args are the row's values in requestColumns order.
func (r *requestRow) args() ([]any, error) {
	lists := [4]string{}
	for i, l := range [][]string{r.Scopes, r.GrantedScopes, r.Audiences, r.GrantedAudiences} {
		var err error
		if lists[i], err = sqlList(l); err != nil {
			return nil, err
		}
	}
	var expires any
	if r.ExpiresAt != nil {
		expires = sqlTime(*r.ExpiresAt)
	}
	return []any{r.Signature, r.RequestID, sqlTime(r.RequestedAt), r.ClientID, lists[0], lists[1], lists[2], lists[3],
		r.Form, r.SessionData, r.Subject, r.Active, expires}, nil
}

// sensitiveFormKey reports whether a request parameter must not be stored:
// passwords, secrets, tokens, codes and PKCE verifiers.
func sensitiveFormKey(key string) bool {
	k := strings.ToLower(key)
	return k == "code" || k == "code_verifier" ||
		strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "token") ||
		strings.Contains(k, "assertion")
}

func sanitizeForm(form url.Values) string {
	clean := url.Values{}
	for k, vs := range form {
		if !sensitiveFormKey(k) {
			clean[k] = vs
		}
	}
	return clean.Encode()
}

func orEmpty(a []string) []string {
	if a == nil {
		return []string{}
	}
	return a
}

// newRequestRow captures a fosite request for storage.
func newRequestRow(signature string, req fosite.Requester, tokenType fosite.TokenType) (requestRow, error) {
	r := requestRow{
		Signature:        signature,
		RequestID:        req.GetID(),
		RequestedAt:      req.GetRequestedAt().UTC(),
		Scopes:           orEmpty(req.GetRequestedScopes()),
		GrantedScopes:    orEmpty(req.GetGrantedScopes()),
		Audiences:        orEmpty(req.GetRequestedAudience()),
		GrantedAudiences: orEmpty(req.GetGrantedAudience()),
		Form:             sanitizeForm(req.GetRequestForm()),
		SessionData:      "null",
		Active:           true,
	}
	if c := req.GetClient(); c != nil {
		r.ClientID = c.GetID()
	}
	if sess := req.GetSession(); !isNilSession(sess) {
		data, err := encodeSession(sess)
		if err != nil {
			return r, fmt.Errorf("storage: encode session: %w", err)
		}
		r.SessionData = string(data)
		r.Subject = sess.GetSubject()
		if exp := sess.GetExpiresAt(tokenType); !exp.IsZero() {
			exp = exp.UTC()
			r.ExpiresAt = &exp
		}
	}
	return r, nil
}

// isNilSession reports whether a session is nil, or a nil pointer in an
// interface (which can be neither encoded nor decoded into).
func isNilSession(session fosite.Session) bool {
	if session == nil {
		return true
	}
	v := reflect.ValueOf(session)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// requestOf gives a loaded row its client and rebuilds its request.
func (s *Store) requestOf(ctx context.Context, kind string, r *requestRow, session fosite.Session) (*fosite.Request, error) {
	var err error
	if r.Client, err = s.clientOf(ctx, r.ClientID); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("storage: %s: load its client: %w", kind, err)
	}
	return s.toRequest(r, session)
}

// toRequest rebuilds the fosite request of a row loaded with its client (a
// deleted client is ErrNotFound), decoding the stored session data into
// session unless session is nil.
func (s *Store) toRequest(r *requestRow, session fosite.Session) (*fosite.Request, error) {
	if isNilSession(session) {
		session = nil
	}
	client := r.Client
	if client == nil {
		return nil, notFound("client", r.ClientID)
	}
	form, err := url.ParseQuery(r.Form)
	if err != nil {
		return nil, fmt.Errorf("storage: decode stored form: %w", err)
	}
	if session != nil && r.SessionData != "null" && r.SessionData != "" {
		if err := json.Unmarshal([]byte(r.SessionData), session); err != nil {
			return nil, fmt.Errorf("storage: decode stored session: %w", err)
		}
	}
	return &fosite.Request{
		ID:                r.RequestID,
		RequestedAt:       r.RequestedAt.UTC(),
		Client:            client,
		RequestedScope:    fosite.Arguments(orEmpty(r.Scopes)),
		GrantedScope:      fosite.Arguments(orEmpty(r.GrantedScopes)),
		RequestedAudience: fosite.Arguments(orEmpty(r.Audiences)),
		GrantedAudience:   fosite.Arguments(orEmpty(r.GrantedAudiences)),
		Form:              form,
		Session:           session,
	}, nil
}

// A preparedWrite stores a fosite request encoded beforehand: the
// Prepare* methods encode the request (session JSON and all) as it is when
// they are called, and the write only runs the statement. The broker
// records prepared writes while it signs and applies them together in one
// short transaction, with nothing left to encode while it holds SQLite's
// writer.
type preparedWrite func(ctx context.Context) error

// prepareInsert encodes req as a row of table, followed by extra columns.
func (s *Store) prepareInsert(table, kind, signature string, req fosite.Requester, tokenType fosite.TokenType, extra ...any) (preparedWrite, error) {
	r, err := newRequestRow(signature, req, tokenType)
	if err != nil {
		return nil, err
	}
	return s.prepareRowInsert(kind, tokenSQL[table].insert, r, extra...)
}

// prepareRowInsert binds an encoded row, followed by extra columns, to an
// insert statement.
func (s *Store) prepareRowInsert(kind, insert string, r requestRow, extra ...any) (preparedWrite, error) {
	args, err := r.args()
	if err != nil {
		return nil, err
	}
	args = append(args, extra...)
	return func(ctx context.Context) error {
		db, err := s.writer(ctx)
		if err != nil {
			return err
		}
		if _, err := s.runner(db).exec(ctx, insert, args...); err != nil {
			return s.wrap("create "+kind, err)
		}
		return nil
	}, nil
}

// loadRow loads a token row by signature.
func loadRow[T any, P tokenRow[T]](ctx context.Context, s *Store, kind, signature string) (P, error) {
	if unstorable(signature) {
		return nil, fmt.Errorf("storage: %s: %w", kind, ErrNotFound)
	}
	row := P(new(T))
	memo := readMemoFrom(ctx)
	if memo != nil {
		if cached, ok := memo.get(row.table(), signature); ok {
			*(*T)(row) = *(*T)(cached.(P))
			row.row().detach()
			return row, nil
		}
	}
	db := s.reader(ctx)
	rows, err := s.runner(db).query(ctx, s.selectBySignature(row.table()), signature)
	if err == nil {
		err = s.scanOne(ctx, rows, row)
	}
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, fmt.Errorf("storage: %s: %w", kind, ErrNotFound)
		}
		return nil, s.wrap("load "+kind, err)
	}
	if memo != nil {
		kept := P(new(T))
		*(*T)(kept) = *(*T)(row)
		kept.row().detach()
		memo.put(row.table(), signature, kept)
	}
	return row, nil
}

type readMemoKey struct{}

// readAccessSignature is the access_token_signature of the refresh token
// row ctx's request read (through the memo), if it read it.
func readAccessSignature(ctx context.Context, signature string) *string {
	memo := readMemoFrom(ctx)
	if memo == nil {
		return nil
	}
	row, ok := memo.get(tableRefresh, signature)
	if !ok {
		return nil
	}
	sig := row.(*refreshRow).AccessTokenSignature
	return &sig
}

// readMemo holds the token rows one request read outside a transaction.
type readMemo struct {
	mu   sync.Mutex
	rows map[[2]string]any // {table, signature} → a private copy of the row
}

// withReadMemo returns a context in which a token row read outside a
// transaction is read from the database once: reading it again returns a
// copy of what the first read found. It is for one request whose writes
// are checked when they commit (the broker's token endpoint: fosite reads
// an authorization code twice during its exchange, and the commit's
// conditional invalidation catches a concurrent use), never for a
// long-lived context. Reads inside a transaction always query.
func withReadMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, readMemoKey{}, &readMemo{})
}

// readMemoFrom is the context's memo, or nil inside a transaction or
// without one.
func readMemoFrom(ctx context.Context) *readMemo {
	m, _ := ctx.Value(readMemoKey{}).(*readMemo)
	if m == nil || txFrom(ctx) != nil {
		return nil
	}
	return m
}

func (m *readMemo) get(table, signature string) (any, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	row, ok := m.rows[[2]string{table, signature}]
	return row, ok
}

func (m *readMemo) put(table, signature string, row any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rows == nil { // a client_credentials request reads no token row
		m.rows = map[[2]string]any{}
	}
	m.rows[[2]string{table, signature}] = row
}

// clientOf loads the client of a token row: through the Store's client
// source when it has one, else from the database.
func (s *Store) clientOf(ctx context.Context, id string) (*Client, error) {
	if s.clients != nil {
		return s.clients(ctx, id)
	}
	return s.LookupClient(ctx, id)
}

// getRequest loads a token row and rebuilds its request. An inactive row
// comes back WITH inactiveErr, as fosite requires.
func getRequest[T any, P tokenRow[T]](ctx context.Context, s *Store, kind, signature string, session fosite.Session, inactiveErr error) (fosite.Requester, error) {
	row, err := loadRow[T, P](ctx, s, kind, signature)
	if err != nil {
		return nil, err
	}
	r := row.row()
	req, err := s.requestOf(ctx, kind, r, session)
	if err != nil {
		return nil, err
	}
	if !r.Active && inactiveErr != nil {
		return req, fmt.Errorf("storage: %s: %w", kind, inactiveErr)
	}
	return req, nil
}

// deleteRow removes a token row; an absent one is not an error.
func (s *Store) deleteRow(ctx context.Context, table, signature string) error {
	if unstorable(signature) {
		return nil // nothing can be stored under it
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := s.runner(db).exec(ctx, tokenSQL[table].deleteBySignature, signature); err != nil {
		return s.wrap("delete from "+table, err)
	}
	return nil
}

// clientAssertionJWTValid fails with fosite.ErrJTIKnown when the jti of a
// client assertion was seen and has not expired.
func (s *Store) clientAssertionJWTValid(ctx context.Context, jti string) error {
	exists, err := s.reader(ctx).NewSelect().TableExpr("jwt_assertions").
		Where("jti = ?", jti).Where("expires_at > ?", time.Now().UTC()).Exists(ctx)
	if err != nil {
		return s.wrap("check client assertion jti", err)
	}
	if exists {
		return fosite.ErrJTIKnown
	}
	return nil
}

// setClientAssertionJWT records the jti of a client assertion until exp.
// It fails with fosite.ErrJTIKnown when the jti is recorded and unexpired.
func (s *Store) setClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewRaw(
		`INSERT INTO jwt_assertions (jti, expires_at) VALUES (?, ?)
		 ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
		 WHERE jwt_assertions.expires_at <= ?`,
		jti, exp.UTC(), time.Now().UTC()).Exec(ctx)
	if err != nil {
		return s.wrap("record client assertion jti", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: record client assertion jti: %w", err)
	} else if n == 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// createAuthorizeCodeSession stores an authorization code.
func (s *Store) createAuthorizeCodeSession(ctx context.Context, signature string, req fosite.Requester) error {
	w, err := s.prepareCreateAuthorizeCodeSession(signature, req)
	if err != nil {
		return err
	}
	return w(ctx)
}

// prepareCreateAuthorizeCodeSession is createAuthorizeCodeSession encoded
// now, run later.
func (s *Store) prepareCreateAuthorizeCodeSession(signature string, req fosite.Requester) (preparedWrite, error) {
	return s.prepareInsert(tableCodes, "authorize code", signature, req, fosite.AuthorizeCode)
}

// getAuthorizeCodeSession loads an authorization code; a used one comes
// back with fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) getAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return getRequest[codeRow](ctx, s, "authorize code", signature, session, fosite.ErrInvalidatedAuthorizeCode)
}

// invalidateAuthorizeCodeSession marks a code used. Only one caller can do
// that: the others get fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) invalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := s.runner(db).exec(ctx, sqlInvalidateCode, signature)
	if err != nil {
		return s.wrap("invalidate authorize code", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: invalidate authorize code: %w", err)
	} else if n == 1 {
		return nil
	}
	if _, err := loadRow[codeRow](ctx, s, "authorize code", signature); err != nil {
		return err
	}
	return fmt.Errorf("storage: authorize code: %w", fosite.ErrInvalidatedAuthorizeCode)
}

// createAccessTokenSession stores an access token.
func (s *Store) createAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	w, err := s.prepareCreateAccessTokenSession(signature, req)
	if err != nil {
		return err
	}
	return w(ctx)
}

// prepareCreateAccessTokenSession is createAccessTokenSession encoded now,
// run later.
func (s *Store) prepareCreateAccessTokenSession(signature string, req fosite.Requester) (preparedWrite, error) {
	return s.prepareInsert(tableAccess, "access token", signature, req, fosite.AccessToken)
}

// getAccessTokenSession loads an access token; a revoked one comes back
// with fosite.ErrInactiveToken.
func (s *Store) getAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return getRequest[accessRow](ctx, s, "access token", signature, session, fosite.ErrInactiveToken)
}

// deleteAccessTokenSession removes an access token.
func (s *Store) deleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteRow(ctx, tableAccess, signature)
}

// createRefreshTokenSession stores a refresh token and the signature of
// the access token issued with it.
func (s *Store) createRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	w, err := s.prepareCreateRefreshTokenSession(signature, accessSignature, req)
	if err != nil {
		return err
	}
	return w(ctx)
}

// prepareCreateRefreshTokenSession is createRefreshTokenSession encoded now,
// run later.
func (s *Store) prepareCreateRefreshTokenSession(signature, accessSignature string, req fosite.Requester) (preparedWrite, error) {
	// first_used_at: not used yet
	return s.prepareInsert(tableRefresh, "refresh token", signature, req, fosite.RefreshToken, accessSignature, nil)
}

// getRefreshTokenSession loads a refresh token; a rotated or revoked one
// comes back with fosite.ErrInactiveToken — for a rotated one, inside a
// *RotatedError that says when it was rotated.
func (s *Store) getRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	row, err := loadRow[refreshRow](ctx, s, "refresh token", signature)
	if err != nil {
		return nil, err
	}
	req, err := s.requestOf(ctx, "refresh token", &row.requestRow, session)
	if err != nil {
		return nil, err
	}
	switch {
	case row.Active:
		return req, nil
	case row.FirstUsedAt != nil:
		return req, &RotatedError{At: row.FirstUsedAt.UTC()}
	default:
		return req, fmt.Errorf("storage: refresh token: %w", fosite.ErrInactiveToken)
	}
}

// RotatedError is getRefreshTokenSession's error for a refresh token that
// was rotated (used to get new tokens), whether or not its grant was revoked
// since. It is a fosite.ErrInactiveToken.
type RotatedError struct {
	At time.Time // when it was rotated, by the clock of the rotating broker
}

func (e *RotatedError) Error() string {
	return "storage: refresh token: rotated at " + e.At.Format(time.RFC3339Nano) + ": " + fosite.ErrInactiveToken.Error()
}

func (e *RotatedError) Unwrap() error { return fosite.ErrInactiveToken }

// deleteRefreshTokenSession removes a refresh token.
func (s *Store) deleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRow(ctx, tableRefresh, signature)
}

// rotateRefreshToken deactivates the refresh token being used and the
// access token issued with it. It is a conditional update: of concurrent
// rotations of one token exactly one succeeds; the others get
// fosite.ErrInactiveToken (or fosite.ErrNotFound when the token is gone).
//
// accessSignature, when not nil, is the token's access_token_signature as
// read before (it never changes): on SQLite the update then goes without
// reading it again.
func (s *Store) rotateRefreshToken(ctx context.Context, requestID, signature string, accessSignature *string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	run := s.runner(db)
	var accessSignatures []string
	if s.dialect == DialectSQLite {
		if accessSignature != nil {
			accessSignatures = []string{*accessSignature}
		} else {
			accessSignatures, err = queryStrings(ctx, run, sqlActiveRefreshAccess, signature, requestID)
		}
		if err == nil && len(accessSignatures) > 0 {
			err = s.execOne(ctx, db, sqlDeactivateRefresh, sqlTime(time.Now()), signature, requestID)
			if errors.Is(err, sql.ErrNoRows) {
				accessSignatures, err = nil, nil // another rotation came first
			}
		}
	} else {
		accessSignatures, err = queryStrings(ctx, run, sqlRotateRefresh, sqlTime(time.Now()), signature, requestID)
	}
	if err != nil {
		return s.wrap("rotate refresh token", err)
	}
	if len(accessSignatures) == 0 {
		row, err := loadRow[refreshRow](ctx, s, "refresh token", signature)
		if err != nil {
			return err
		}
		if row.RequestID != requestID {
			return fmt.Errorf("storage: rotate refresh token: request id does not match: %w", ErrNotFound)
		}
		return fmt.Errorf("storage: rotate refresh token: %w", fosite.ErrInactiveToken)
	}
	if accessSignatures[0] == "" {
		return nil
	}
	if _, err := run.exec(ctx, sqlDeactivateAccess, accessSignatures[0]); err != nil {
		return s.wrap("rotate refresh token: deactivate its access token", err)
	}
	return nil
}

// queryStrings runs a query that returns one text column.
func queryStrings(ctx context.Context, run sqlRunner, query string, args ...any) ([]string, error) {
	rows, err := run.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// revokeRefreshToken deactivates every refresh token of a grant (the
// request id names the whole rotation family).
func (s *Store) revokeRefreshToken(ctx context.Context, requestID string) error {
	return s.revokeFamily(ctx, tableRefresh, requestID)
}

// revokeAccessToken deactivates every access token of a grant.
func (s *Store) revokeAccessToken(ctx context.Context, requestID string) error {
	return s.revokeFamily(ctx, tableAccess, requestID)
}

func (s *Store) revokeFamily(ctx context.Context, table, requestID string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	_, err = db.NewUpdate().TableExpr(table).
		Set("active = ?", false).
		Where("request_id = ?", requestID).
		Where("active = ?", true).
		Exec(ctx)
	if err != nil {
		return s.wrap("revoke "+table, err)
	}
	return nil
}

// oidcKey is the key of an OpenID Connect session: fosite hands over the
// raw authorization code, which must not be stored.
func oidcKey(authorizeCode string) string {
	sum := sha256.Sum256([]byte(authorizeCode))
	return hex.EncodeToString(sum[:])
}

// createOpenIDConnectSession stores the OpenID Connect part of an
// authorization, keyed by a hash of the code.
func (s *Store) createOpenIDConnectSession(ctx context.Context, authorizeCode string, req fosite.Requester) error {
	w, err := s.prepareCreateOpenIDConnectSession(authorizeCode, req)
	if err != nil {
		return err
	}
	return w(ctx)
}

// prepareCreateOpenIDConnectSession is createOpenIDConnectSession encoded
// now, run later.
func (s *Store) prepareCreateOpenIDConnectSession(authorizeCode string, req fosite.Requester) (preparedWrite, error) {
	return s.prepareInsert(tableOIDC, "openid connect session", oidcKey(authorizeCode), req, fosite.AuthorizeCode)
}

// getOpenIDConnectSession loads the OpenID Connect part of an
// authorization into the session of requester.
func (s *Store) getOpenIDConnectSession(ctx context.Context, authorizeCode string, requester fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if requester != nil {
		session = requester.GetSession()
	}
	if s.codeSignature != nil {
		if req, ok, err := s.codePart(ctx, s.codeSignature(authorizeCode), oidcForm, session); ok || err != nil {
			return req, err
		}
	}
	return getRequest[oidcRow](ctx, s, "openid connect session", oidcKey(authorizeCode), session, nil)
}

// deleteOpenIDConnectSession removes the OpenID Connect part of an
// authorization.
func (s *Store) deleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	if s.codeSignature != nil {
		if err := s.clearCodePart(ctx, s.codeSignature(authorizeCode), sqlClearCodeOIDC); err != nil {
			return err
		}
	}
	return s.deleteRow(ctx, tableOIDC, oidcKey(authorizeCode))
}

// createPKCERequestSession stores the PKCE challenge of an authorization.
func (s *Store) createPKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	w, err := s.prepareCreatePKCERequestSession(signature, req)
	if err != nil {
		return err
	}
	return w(ctx)
}

// prepareCreatePKCERequestSession is createPKCERequestSession encoded now,
// run later.
func (s *Store) prepareCreatePKCERequestSession(signature string, req fosite.Requester) (preparedWrite, error) {
	return s.prepareInsert(tablePKCE, "pkce request", signature, req, fosite.AuthorizeCode)
}

// getPKCERequestSession loads the PKCE challenge of an authorization.
func (s *Store) getPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	if req, ok, err := s.codePart(ctx, signature, pkceForm, session); ok || err != nil {
		return req, err
	}
	return getRequest[pkceRow](ctx, s, "pkce request", signature, session, nil)
}

// deletePKCERequestSession removes the PKCE challenge of an authorization.
func (s *Store) deletePKCERequestSession(ctx context.Context, signature string) error {
	if err := s.clearCodePart(ctx, signature, sqlClearCodePKCE); err != nil {
		return err
	}
	return s.deleteRow(ctx, tablePKCE, signature)
}

// encodeSession is the JSON of a session. A session that writes its own
// (json.Marshaler, as the broker's does) is asked directly: json.Marshal
// would scan and copy what it wrote once more, on every token row the
// token endpoint records.
func encodeSession(sess fosite.Session) ([]byte, error) {
	if m, ok := sess.(json.Marshaler); ok {
		return m.MarshalJSON()
	}
	return json.Marshal(sess)
}
