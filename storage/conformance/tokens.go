package conformance

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

var (
	errorsIs          = errors.Is
	fositeErrJTIKnown = fosite.ErrJTIKnown
)

// newSession is a broker-like session for subject.
func newSession(subject string, exp time.Time) *openid.DefaultSession {
	return &openid.DefaultSession{
		Claims: &jwt.IDTokenClaims{
			Subject:     subject,
			Nonce:       "nonce-" + subject,
			AuthTime:    time.Now().UTC().Truncate(time.Second),
			RequestedAt: time.Now().UTC().Truncate(time.Second),
			Extra:       map[string]any{"email": subject + "@example.com"},
		},
		Headers: &jwt.Headers{Extra: map[string]any{"kid": "k1"}},
		Subject: subject,
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AuthorizeCode: exp,
			fosite.AccessToken:   exp,
			fosite.RefreshToken:  exp,
		},
	}
}

// newRequest is a request of client for subject whose tokens expire at exp
// (zero: never).
func newRequest(client fosite.Client, requestID, subject string, exp time.Time) *fosite.Request {
	return &fosite.Request{
		ID:                requestID,
		RequestedAt:       time.Now().UTC().Truncate(time.Second),
		Client:            client,
		RequestedScope:    fosite.Arguments{"openid", "offline_access", "profile"},
		GrantedScope:      fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{"https://api.example"},
		GrantedAudience:   fosite.Arguments{"https://api.example"},
		Form: url.Values{
			"scope":         {"openid offline_access profile"},
			"redirect_uri":  {"https://app.example/cb"},
			"password":      {"hunter2"},
			"client_secret": {"s3cret"},
			"refresh_token": {"rt"},
			"code_verifier": {"verifier"},
		},
		Session: newSession(subject, exp),
	}
}

// family is the tokens of one grant: a code, an access token and a refresh
// token sharing a request id.
type family struct {
	requestID, code, access, refresh string
}

// issueFamily stores a code, an access and a refresh token of one grant.
func issueFamily(t *testing.T, ts *storage.TokenStore, clientID, requestID, subject string) family {
	t.Helper()
	c := ctx(t)
	client, err := ts.GetClient(c, clientID)
	must(t, err)
	f := family{requestID: requestID, code: "code-" + requestID, access: "at-" + requestID, refresh: "rt-" + requestID}
	req := newRequest(client, requestID, subject, time.Now().Add(time.Hour))
	must(t, ts.CreateAuthorizeCodeSession(c, f.code, req))
	must(t, ts.CreateAccessTokenSession(c, f.access, req))
	must(t, ts.CreateRefreshTokenSession(c, f.refresh, f.access, req))
	return f
}

func (f family) assertActive(t *testing.T, ts *storage.TokenStore) {
	t.Helper()
	c := ctx(t)
	_, err := ts.GetAuthorizeCodeSession(c, f.code, openid.NewDefaultSession())
	must(t, err)
	_, err = ts.GetAccessTokenSession(c, f.access, openid.NewDefaultSession())
	must(t, err)
	_, err = ts.GetRefreshTokenSession(c, f.refresh, openid.NewDefaultSession())
	must(t, err)
}

func (f family) assertGone(t *testing.T, ts *storage.TokenStore) {
	t.Helper()
	c := ctx(t)
	_, err := ts.GetAuthorizeCodeSession(c, f.code, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetAccessTokenSession(c, f.access, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetRefreshTokenSession(c, f.refresh, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
}

// assertInactive checks that the access and refresh tokens come back with
// their requester and fosite.ErrInactiveToken.
func (f family) assertInactive(t *testing.T, ts *storage.TokenStore) {
	t.Helper()
	c := ctx(t)
	req, err := ts.GetAccessTokenSession(c, f.access, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrInactiveToken)
	if req == nil || req.GetID() != f.requestID {
		t.Errorf("inactive access token: requester %v, want request %s", req, f.requestID)
	}
	req, err = ts.GetRefreshTokenSession(c, f.refresh, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrInactiveToken)
	if req == nil || req.GetID() != f.requestID {
		t.Errorf("inactive refresh token: requester %v, want request %s", req, f.requestID)
	}
}

// checkRequest compares a loaded requester with the stored one.
func checkRequest(t *testing.T, got fosite.Requester, want *fosite.Request) {
	t.Helper()
	if got.GetID() != want.ID {
		t.Errorf("request id = %q, want %q", got.GetID(), want.ID)
	}
	if !got.GetRequestedAt().Equal(want.RequestedAt) {
		t.Errorf("requested at = %v, want %v", got.GetRequestedAt(), want.RequestedAt)
	}
	if got.GetClient() == nil || got.GetClient().GetID() != want.Client.GetID() {
		t.Errorf("client = %v, want %s", got.GetClient(), want.Client.GetID())
	} else if _, ok := got.GetClient().(*storage.Client); !ok {
		t.Errorf("client is %T, want *storage.Client", got.GetClient())
	}
	sameStrings(t, "requested scopes", got.GetRequestedScopes(), want.RequestedScope)
	sameStrings(t, "granted scopes", got.GetGrantedScopes(), want.GrantedScope)
	sameStrings(t, "requested audience", got.GetRequestedAudience(), want.RequestedAudience)
	sameStrings(t, "granted audience", got.GetGrantedAudience(), want.GrantedAudience)
	form := got.GetRequestForm()
	if form.Get("scope") != want.Form.Get("scope") || form.Get("redirect_uri") != want.Form.Get("redirect_uri") {
		t.Errorf("form = %v, want scope and redirect_uri of %v", form, want.Form)
	}
	for _, secret := range []string{"password", "client_secret", "refresh_token", "code_verifier"} {
		if form.Has(secret) {
			t.Errorf("stored form kept %q", secret)
		}
	}
	sess, ok := got.GetSession().(*openid.DefaultSession)
	if !ok {
		t.Fatalf("session is %T, want *openid.DefaultSession", got.GetSession())
	}
	wantSess := want.Session.(*openid.DefaultSession)
	if sess.Subject != wantSess.Subject || sess.Claims == nil || sess.Claims.Subject != wantSess.Claims.Subject ||
		sess.Claims.Nonce != wantSess.Claims.Nonce || !sess.Claims.AuthTime.Equal(wantSess.Claims.AuthTime) ||
		sess.Claims.Extra["email"] != wantSess.Claims.Extra["email"] || sess.Headers == nil || sess.Headers.Extra["kid"] != "k1" {
		t.Errorf("session = %+v, want %+v", sess, wantSess)
	}
	if !sess.GetExpiresAt(fosite.AccessToken).Equal(wantSess.GetExpiresAt(fosite.AccessToken)) {
		t.Errorf("session access expiry = %v, want %v", sess.GetExpiresAt(fosite.AccessToken), wantSess.GetExpiresAt(fosite.AccessToken))
	}
}

func testAuthorizeCode(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	client := newClient("app")
	must(t, s.CreateClient(c, client))
	req := newRequest(client, "req-1", "u1", time.Now().Add(10*time.Minute).UTC().Truncate(time.Second))
	must(t, ts.CreateAuthorizeCodeSession(c, "code-sig", req))

	got, err := ts.GetAuthorizeCodeSession(c, "code-sig", openid.NewDefaultSession())
	must(t, err)
	checkRequest(t, got, req)

	_, err = ts.GetAuthorizeCodeSession(c, "other", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)

	must(t, ts.InvalidateAuthorizeCodeSession(c, "code-sig"))
	got, err = ts.GetAuthorizeCodeSession(c, "code-sig", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrInvalidatedAuthorizeCode)
	if got == nil {
		t.Fatal("a used code must come back with its requester")
	}
	checkRequest(t, got, req)
	wantErr(t, ts.InvalidateAuthorizeCodeSession(c, "code-sig"), fosite.ErrInvalidatedAuthorizeCode)
	wantErr(t, ts.InvalidateAuthorizeCodeSession(c, "other"), fosite.ErrNotFound)
}

func testAccessToken(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	client := newClient("app")
	must(t, s.CreateClient(c, client))
	req := newRequest(client, "req-1", "u1", time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	must(t, ts.CreateAccessTokenSession(c, "at", req))
	wantErr(t, ts.CreateAccessTokenSession(c, "at", req), storage.ErrConflict)

	got, err := ts.GetAccessTokenSession(c, "at", openid.NewDefaultSession())
	must(t, err)
	checkRequest(t, got, req)

	must(t, ts.DeleteAccessTokenSession(c, "at"))
	must(t, ts.DeleteAccessTokenSession(c, "at"))
	_, err = ts.GetAccessTokenSession(c, "at", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
	wantErr(t, err, storage.ErrNotFound)
}

func testRefreshToken(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	client := newClient("app")
	must(t, s.CreateClient(c, client))
	req := newRequest(client, "req-1", "u1", time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	must(t, ts.CreateAccessTokenSession(c, "at-1", req))
	must(t, ts.CreateRefreshTokenSession(c, "rt-1", "at-1", req))
	got, err := ts.GetRefreshTokenSession(c, "rt-1", openid.NewDefaultSession())
	must(t, err)
	checkRequest(t, got, req)

	// Rotation deactivates the token and the access token issued with it.
	must(t, ts.RotateRefreshToken(c, "req-1", "rt-1"))
	f1 := family{requestID: "req-1", access: "at-1", refresh: "rt-1"}
	f1.assertInactive(t, ts)
	got, err = ts.GetRefreshTokenSession(c, "rt-1", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrInactiveToken)
	checkRequest(t, got, req)

	// Rotating it again fails: only one rotation wins.
	wantErr(t, ts.RotateRefreshToken(c, "req-1", "rt-1"), fosite.ErrInactiveToken)
	wantErr(t, ts.RotateRefreshToken(c, "req-1", "missing"), fosite.ErrNotFound)

	must(t, ts.CreateAccessTokenSession(c, "at-2", req))
	must(t, ts.CreateRefreshTokenSession(c, "rt-2", "at-2", req))
	wantErr(t, ts.RotateRefreshToken(c, "req-other", "rt-2"), fosite.ErrNotFound)
	_, err = ts.GetRefreshTokenSession(c, "rt-2", openid.NewDefaultSession())
	must(t, err)
	_, err = ts.GetAccessTokenSession(c, "at-2", openid.NewDefaultSession())
	must(t, err)

	must(t, ts.DeleteRefreshTokenSession(c, "rt-1"))
	must(t, ts.DeleteRefreshTokenSession(c, "rt-1"))
	_, err = ts.GetRefreshTokenSession(c, "rt-1", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
}
