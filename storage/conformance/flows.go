package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

func testRevokeFamily(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	client, err := s.GetClient(c, "app")
	must(t, err)
	// A family that rotated twice: three refresh and three access tokens.
	req := newRequest(client, "req-fam", "u1", time.Now().Add(time.Hour))
	var members []family
	for i := range 3 {
		f := family{requestID: "req-fam", access: fmt.Sprintf("at-%d", i), refresh: fmt.Sprintf("rt-%d", i)}
		must(t, ts.CreateAccessTokenSession(c, f.access, req))
		must(t, ts.CreateRefreshTokenSession(c, f.refresh, f.access, req))
		members = append(members, f)
	}
	other := issueFamily(t, ts, "app", "req-other", "u1")

	must(t, ts.RevokeRefreshToken(c, "req-fam"))
	must(t, ts.RevokeAccessToken(c, "req-fam"))
	for _, f := range members {
		f.assertInactive(t, ts)
	}
	other.assertActive(t, ts)
	// Revoking an unknown or revoked family is not an error.
	must(t, ts.RevokeRefreshToken(c, "req-fam"))
	must(t, ts.RevokeAccessToken(c, "nope"))
}

func testPKCE(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	client := newClient("app")
	must(t, s.CreateClient(c, client))
	req := newRequest(client, "req-1", "u1", time.Now().Add(time.Minute).UTC().Truncate(time.Second))
	req.Form.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	req.Form.Set("code_challenge_method", "S256")
	must(t, ts.CreatePKCERequestSession(c, "code-sig", req))
	got, err := ts.GetPKCERequestSession(c, "code-sig", openid.NewDefaultSession())
	must(t, err)
	checkRequest(t, got, req)
	if got.GetRequestForm().Get("code_challenge") != req.Form.Get("code_challenge") ||
		got.GetRequestForm().Get("code_challenge_method") != "S256" {
		t.Errorf("PKCE form = %v", got.GetRequestForm())
	}
	must(t, ts.DeletePKCERequestSession(c, "code-sig"))
	_, err = ts.GetPKCERequestSession(c, "code-sig", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
}

func testOpenIDConnect(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	client := newClient("app")
	must(t, s.CreateClient(c, client))
	req := newRequest(client, "req-1", "u1", time.Now().Add(time.Minute).UTC().Truncate(time.Second))
	req.Form.Set("nonce", "n-0S6_WzA2Mj")
	const rawCode = "ory_ac_rawcode.signature"
	must(t, ts.CreateOpenIDConnectSession(c, rawCode, req))

	// fosite passes the token request; its session receives the stored one.
	tokenReq := fosite.NewAccessRequest(openid.NewDefaultSession())
	got, err := ts.GetOpenIDConnectSession(c, rawCode, tokenReq)
	must(t, err)
	checkRequest(t, got, req)
	if got.GetRequestForm().Get("nonce") != "n-0S6_WzA2Mj" {
		t.Errorf("nonce not kept: %v", got.GetRequestForm())
	}
	if sess := tokenReq.GetSession().(*openid.DefaultSession); sess.Subject != "u1" {
		t.Errorf("the requester's session was not filled: %+v", sess)
	}

	_, err = ts.GetOpenIDConnectSession(c, "ory_ac_other", fosite.NewAccessRequest(openid.NewDefaultSession()))
	wantErr(t, err, fosite.ErrNotFound)
	must(t, ts.DeleteOpenIDConnectSession(c, rawCode))
	_, err = ts.GetOpenIDConnectSession(c, rawCode, fosite.NewAccessRequest(openid.NewDefaultSession()))
	wantErr(t, err, fosite.ErrNotFound)
}

func testNilSession(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	// Revocation loads tokens with a nil session.
	got, err := ts.GetRefreshTokenSession(c, f.refresh, nil)
	must(t, err)
	if got.GetID() != "req-1" || got.GetClient().GetID() != "app" {
		t.Errorf("GetRefreshTokenSession(nil session) = %+v", got)
	}
	got, err = ts.GetAccessTokenSession(c, f.access, nil)
	must(t, err)
	_, err = ts.GetAccessTokenSession(c, f.access, (*openid.DefaultSession)(nil))
	must(t, err)
	if got.GetID() != "req-1" {
		t.Errorf("GetAccessTokenSession(nil session) = %+v", got)
	}
	must(t, ts.RotateRefreshToken(c, "req-1", f.refresh))
	got, err = ts.GetRefreshTokenSession(c, f.refresh, nil)
	wantErr(t, err, fosite.ErrInactiveToken)
	if got == nil || got.GetID() != "req-1" {
		t.Errorf("rotated token with nil session: requester %v", got)
	}

	// A request stored without a session.
	client, err := s.GetClient(c, "app")
	must(t, err)
	bare := fosite.NewRequest()
	bare.ID = "req-bare"
	bare.Client = client
	bare.Session = nil
	must(t, ts.CreateAccessTokenSession(c, "at-bare", bare))
	bare.Session = (*openid.DefaultSession)(nil)
	must(t, ts.CreateAccessTokenSession(c, "at-bare-typed-nil", bare))
	_, err = ts.GetAccessTokenSession(c, "at-bare", openid.NewDefaultSession())
	must(t, err)
}

func testDeletedClient(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	// Delete the client row only (as another replica might between two
	// reads); a token store that has not cached the client (another
	// replica's) finds the tokens' client gone.
	_, err := s.DB().NewDelete().Model((*storage.Client)(nil)).Where("id = ?", "app").Exec(c)
	must(t, err)
	ts = Tokens(s)
	_, err = ts.GetAccessTokenSession(c, f.access, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetRefreshTokenSession(c, f.refresh, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
}

func testRevokeSubjectTokens(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	a1 := issueFamily(t, ts, "app", "req-a1", "alice")
	a2 := issueFamily(t, ts, "app", "req-a2", "alice")
	b := issueFamily(t, ts, "app", "req-b", "bob")
	must(t, s.RevokeSubjectTokens(c, "alice"))
	a1.assertInactive(t, ts)
	a2.assertInactive(t, ts)
	_, err := ts.GetAuthorizeCodeSession(c, a1.code, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrInvalidatedAuthorizeCode)
	b.assertActive(t, ts)
}

func testDeleteExpired(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	client, err := s.GetClient(c, "app")
	must(t, err)
	now := time.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)

	// One expired and one live row of every kind.
	for _, tc := range []struct {
		suffix string
		exp    time.Time
	}{{"old", past}, {"new", future}} {
		req := newRequest(client, "req-"+tc.suffix, "u1", tc.exp)
		must(t, ts.CreateAuthorizeCodeSession(c, "code-"+tc.suffix, req))
		must(t, ts.CreateAccessTokenSession(c, "at-"+tc.suffix, req))
		must(t, ts.CreateRefreshTokenSession(c, "rt-"+tc.suffix, "at-"+tc.suffix, req))
		must(t, ts.CreatePKCERequestSession(c, "code-"+tc.suffix, req))
		must(t, ts.CreateOpenIDConnectSession(c, "raw-"+tc.suffix, req))
		must(t, ts.SetClientAssertionJWT(c, "jti-"+tc.suffix, tc.exp))
		must(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "bs-" + tc.suffix, UserID: "u1", ExpiresAt: tc.exp}))
		must(t, s.CreatePendingLogin(c, &storage.PendingLogin{ID: "pl-" + tc.suffix, ExpiresAt: tc.exp}))
		must(t, s.CreateActionToken(c, &storage.ActionToken{ID: "act-" + tc.suffix, Kind: "reset", UserID: "u1", ExpiresAt: tc.exp}))
		_, _, err := s.HitRateCounter(c, "rc-"+tc.suffix, time.Minute, tc.exp.Add(-time.Minute))
		must(t, err)
	}
	// Tokens without expiry never go.
	must(t, ts.CreateAccessTokenSession(c, "at-forever", newRequest(client, "req-forever", "u1", time.Time{})))

	n, err := s.DeleteExpired(c, now)
	must(t, err)
	if n != 10 {
		t.Errorf("DeleteExpired removed %d rows, want 10 (one of each kind)", n)
	}
	n, err = s.DeleteExpired(c, now)
	must(t, err)
	if n != 0 {
		t.Errorf("second DeleteExpired removed %d rows, want 0", n)
	}

	sess := openid.NewDefaultSession
	_, err = ts.GetAuthorizeCodeSession(c, "code-old", sess())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetAccessTokenSession(c, "at-old", sess())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetRefreshTokenSession(c, "rt-old", sess())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetPKCERequestSession(c, "code-old", sess())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = ts.GetOpenIDConnectSession(c, "raw-old", fosite.NewAccessRequest(sess()))
	wantErr(t, err, fosite.ErrNotFound)
	must(t, ts.ClientAssertionJWTValid(c, "jti-old"))

	_, err = ts.GetAuthorizeCodeSession(c, "code-new", sess())
	must(t, err)
	_, err = ts.GetAccessTokenSession(c, "at-new", sess())
	must(t, err)
	_, err = ts.GetAccessTokenSession(c, "at-forever", sess())
	must(t, err)
	_, err = ts.GetRefreshTokenSession(c, "rt-new", sess())
	must(t, err)
	_, err = ts.GetPKCERequestSession(c, "code-new", sess())
	must(t, err)
	_, err = ts.GetOpenIDConnectSession(c, "raw-new", fosite.NewAccessRequest(sess()))
	must(t, err)
	wantErr(t, ts.ClientAssertionJWTValid(c, "jti-new"), fosite.ErrJTIKnown)
	_, err = s.GetBrowserSession(c, "bs-new")
	must(t, err)
	_, err = s.GetPendingLogin(c, "pl-new")
	must(t, err)
	cnt, _, err := s.HitRateCounter(c, "rc-new", time.Minute, now)
	must(t, err)
	if cnt != 2 {
		t.Errorf("live rate counter was reset: count %d, want 2", cnt)
	}
	_, err = s.UseActionToken(c, "act-new", "reset", now)
	must(t, err)
}

// testDeleteExpiredMany: more expired rows than one batch of the collector.
func testDeleteExpiredMany(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	const n = 2345
	sessions := make([]storage.BrowserSession, n)
	for i := range sessions {
		sessions[i] = storage.BrowserSession{ID: fmt.Sprintf("bs-%d", i), UserID: "u", AMR: []string{}, ExpiresAt: time.Now().Add(-time.Hour)}
	}
	_, err := s.DB().NewInsert().Model(&sessions).Exec(c)
	must(t, err)
	must(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "live", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)}))
	removed, err := s.DeleteExpired(c, time.Now())
	must(t, err)
	if removed != n {
		t.Errorf("DeleteExpired removed %d rows, want %d", removed, n)
	}
	_, err = s.GetBrowserSession(c, "live")
	must(t, err)
}

func testTxRollback(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	client, err := s.GetClient(c, "app")
	must(t, err)
	tx, err := s.BeginTX(c)
	must(t, err)
	must(t, ts.CreateAccessTokenSession(tx, "at", newRequest(client, "req", "u1", time.Now().Add(time.Hour))))
	must(t, s.CreateUser(tx, &storage.User{ID: "u1", Email: "u1@example.com"}))
	// The transaction sees its own writes.
	_, err = ts.GetAccessTokenSession(tx, "at", openid.NewDefaultSession())
	must(t, err)
	must(t, s.Rollback(tx))
	must(t, s.Rollback(tx)) // a second rollback is harmless

	_, err = ts.GetAccessTokenSession(c, "at", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
	_, err = s.GetUser(c, "u1")
	wantErr(t, err, storage.ErrNotFound)
}

func testTxCommit(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	client, err := s.GetClient(c, "app")
	must(t, err)
	tx, err := s.BeginTX(c)
	must(t, err)
	must(t, ts.CreateAccessTokenSession(tx, "at", newRequest(client, "req", "u1", time.Now().Add(time.Hour))))
	must(t, s.CreateUser(tx, &storage.User{ID: "u1", Email: "u1@example.com"}))
	must(t, s.Commit(tx))
	if err := s.Commit(tx); err == nil {
		t.Error("a second Commit succeeded")
	}
	_, err = ts.GetAccessTokenSession(c, "at", openid.NewDefaultSession())
	must(t, err)
	_, err = s.GetUser(c, "u1")
	must(t, err)
	// The finished transaction's context still works, without it.
	_, err = s.GetUser(tx, "u1")
	must(t, err)
}

func testTxNested(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	outer, err := s.BeginTX(c)
	must(t, err)
	inner, err := s.BeginTX(outer) // joins the outer transaction
	must(t, err)
	must(t, s.CreateUser(inner, &storage.User{ID: "u1", Email: "u1@example.com"}))
	must(t, s.Commit(inner)) // a no-op: the outer scope decides
	must(t, s.Rollback(outer))
	_, err = s.GetUser(c, "u1")
	wantErr(t, err, storage.ErrNotFound)

	outer, err = s.BeginTX(c)
	must(t, err)
	inner, err = s.BeginTX(outer)
	must(t, err)
	must(t, s.CreateUser(inner, &storage.User{ID: "u2", Email: "u2@example.com"}))
	must(t, s.Commit(inner))
	must(t, s.Commit(outer))
	_, err = s.GetUser(c, "u2")
	must(t, err)
}

func testTxNestedRollback(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	outer, err := s.BeginTX(c)
	must(t, err)
	must(t, s.CreateUser(outer, &storage.User{ID: "u1", Email: "u1@example.com"}))
	inner, err := s.BeginTX(outer)
	must(t, err)
	must(t, s.Rollback(inner))
	if err := s.Commit(outer); err == nil {
		t.Fatal("Commit after a nested Rollback succeeded")
	}
	_, err = s.GetUser(c, "u1")
	wantErr(t, err, storage.ErrNotFound)

	// A store method that runs its own transaction joins the caller's.
	outer, err = s.BeginTX(c)
	must(t, err)
	must(t, s.CreateUser(outer, &storage.User{ID: "u2", Email: "u2@example.com"}))
	must(t, s.DeleteUser(outer, "u2"))
	must(t, s.CreateUser(outer, &storage.User{ID: "u3", Email: "u3@example.com"}))
	must(t, s.Rollback(outer))
	_, err = s.GetUser(c, "u3")
	wantErr(t, err, storage.ErrNotFound)
}

// testTxLazy: a transaction takes no lock before its first write, so work
// between BeginTX and the first write (signing tokens) does not hold up
// other writers; a transaction that never writes commits as a no-op.
func testTxLazy(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateUser(c, &storage.User{ID: "u0", Email: "u0@example.com"}))
	tx, err := s.BeginTX(c)
	must(t, err)
	_, err = s.GetUser(tx, "u0") // reads do not begin it either
	must(t, err)
	// With the writer held this would wait until the deadline and fail.
	short, cancel := context.WithTimeout(c, 30*time.Second)
	defer cancel()
	must(t, s.CreateUser(short, &storage.User{ID: "u1", Email: "u1@example.com"}))
	// The transaction's first write begins it and sees the committed user.
	must(t, s.DeleteUser(tx, "u1"))
	must(t, s.Commit(tx))
	_, err = s.GetUser(c, "u1")
	wantErr(t, err, storage.ErrNotFound)

	ro, err := s.BeginTX(c)
	must(t, err)
	_, err = s.GetUser(ro, "u0")
	must(t, err)
	must(t, s.Commit(ro))
}

// refresh does what fosite's refresh handler does with storage, in one
// transaction.
func refresh(ctx context.Context, ts *storage.TokenStore, requestID, oldRefresh, newAccess, newRefresh string, req fosite.Requester) (err error) {
	s := ts
	tx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rbErr := s.Rollback(tx); rbErr != nil {
				err = fmt.Errorf("%w (rollback: %v)", err, rbErr)
			}
		}
	}()
	if err := ts.RotateRefreshToken(tx, requestID, oldRefresh); err != nil {
		return err
	}
	if err := ts.CreateAccessTokenSession(tx, newAccess, req); err != nil {
		return err
	}
	if err := ts.CreateRefreshTokenSession(tx, newRefresh, newAccess, req); err != nil {
		return err
	}
	return s.Commit(tx)
}

// isRefreshLoser reports whether err is what a losing concurrent refresh
// may get: fosite turns each into "retry the request".
func isRefreshLoser(err error) bool {
	return errorsIs(err, fosite.ErrInactiveToken) || errorsIs(err, fosite.ErrSerializationFailure) ||
		errorsIs(err, fosite.ErrNotFound)
}

func testConcurrentRefresh(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	stored, err := ts.GetRefreshTokenSession(c, f.refresh, openid.NewDefaultSession())
	must(t, err)

	errs := race(concurrency, func(i int) error {
		return refresh(c, ts, "req-1", f.refresh, fmt.Sprintf("at-new-%d", i), fmt.Sprintf("rt-new-%d", i), stored)
	})
	exactlyOne(t, errs, isRefreshLoser)

	// Exactly the winner's tokens exist and are active; the old pair is not.
	f.assertInactive(t, ts)
	for i, err := range errs {
		_, gotErr := ts.GetRefreshTokenSession(c, fmt.Sprintf("rt-new-%d", i), openid.NewDefaultSession())
		_, atErr := ts.GetAccessTokenSession(c, fmt.Sprintf("at-new-%d", i), openid.NewDefaultSession())
		if err == nil {
			must(t, gotErr)
			must(t, atErr)
		} else {
			wantErr(t, gotErr, fosite.ErrNotFound)
			wantErr(t, atErr, fosite.ErrNotFound)
		}
	}
}

func testConcurrentCodeExchange(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	errs := race(concurrency, func(int) error {
		return s.InTx(c, func(ctx context.Context) error {
			return ts.InvalidateAuthorizeCodeSession(ctx, f.code)
		})
	})
	exactlyOne(t, errs, func(err error) bool {
		return errorsIs(err, fosite.ErrInvalidatedAuthorizeCode) || errorsIs(err, fosite.ErrSerializationFailure)
	})
}

// testTxEach: InTxEach commits the fns that succeed and undoes exactly the
// writes of the one that fails.
func testTxEach(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	client, err := s.GetClient(c, "app")
	must(t, err)
	boom := errors.New("boom")
	errs := s.InTxEach(c, []func(ctx context.Context) error{
		func(ctx context.Context) error {
			return ts.CreateAccessTokenSession(ctx, "at-1", newRequest(client, "req-1", "u1", time.Now().Add(time.Hour)))
		},
		func(ctx context.Context) error {
			must(t, ts.CreateAccessTokenSession(ctx, "at-2", newRequest(client, "req-2", "u1", time.Now().Add(time.Hour))))
			return boom
		},
		func(ctx context.Context) error {
			// A duplicate key: the statement fails, the transaction goes on.
			return ts.CreateAccessTokenSession(ctx, "at-1", newRequest(client, "req-1", "u1", time.Now().Add(time.Hour)))
		},
		func(ctx context.Context) error {
			return ts.CreateAccessTokenSession(ctx, "at-4", newRequest(client, "req-4", "u1", time.Now().Add(time.Hour)))
		},
	})
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], boom) || errs[2] == nil || errs[3] != nil {
		t.Fatalf("InTxEach: %v, want [nil boom conflict nil]", errs)
	}
	// One fn alone (no savepoints): its failure writes nothing either.
	errs = s.InTxEach(c, []func(ctx context.Context) error{func(ctx context.Context) error {
		must(t, ts.CreateAccessTokenSession(ctx, "at-5", newRequest(client, "req-5", "u1", time.Now().Add(time.Hour))))
		return boom
	}})
	if len(errs) != 1 || !errors.Is(errs[0], boom) {
		t.Fatalf("InTxEach of one failing fn: %v, want [boom]", errs)
	}
	for sig, want := range map[string]bool{"at-1": true, "at-2": false, "at-4": true, "at-5": false} {
		_, err := ts.GetAccessTokenSession(c, sig, openid.NewDefaultSession())
		if got := err == nil; got != want {
			t.Errorf("%s stored: %v, want %v (%v)", sig, got, want, err)
		}
	}
}

// testConcurrentRefreshOneTx: concurrent refreshes of one token committed
// in one InTxEach (as the broker groups them): exactly one wins.
func testConcurrentRefreshOneTx(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	stored, err := ts.GetRefreshTokenSession(c, f.refresh, openid.NewDefaultSession())
	must(t, err)
	fns := make([]func(ctx context.Context) error, concurrency)
	for i := range fns {
		fns[i] = func(ctx context.Context) error {
			return refresh(ctx, ts, "req-1", f.refresh, fmt.Sprintf("at-new-%d", i), fmt.Sprintf("rt-new-%d", i), stored)
		}
	}
	errs := s.InTxEach(c, fns)
	exactlyOne(t, errs, isRefreshLoser)
	f.assertInactive(t, ts)
	for i, err := range errs {
		_, rtErr := ts.GetRefreshTokenSession(c, fmt.Sprintf("rt-new-%d", i), openid.NewDefaultSession())
		if (err == nil) != (rtErr == nil) {
			t.Errorf("refresh %d: %v, its new refresh token: %v", i, err, rtErr)
		}
	}
}

// testConcurrentRefreshUnits: concurrent refreshes of one token, each in a
// unit of its own as the broker runs them (the writes recorded while
// fosite handles the request, applied by Run; on SQLite several units
// share a commit): exactly one wins, and only the winner's tokens exist.
func testConcurrentRefreshUnits(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	errs := race(concurrency, func(i int) error {
		unit, end := ts.WithUnit(c)
		defer end()
		stored, err := ts.GetRefreshTokenSession(unit, f.refresh, openid.NewDefaultSession())
		if err != nil {
			return err
		}
		return ts.Run(unit, func(ctx context.Context) error {
			return refresh(ctx, ts, "req-1", f.refresh, fmt.Sprintf("at-new-%d", i), fmt.Sprintf("rt-new-%d", i), stored)
		})
	})
	exactlyOne(t, errs, isRefreshLoser)
	f.assertInactive(t, ts)
	for i, err := range errs {
		_, rtErr := ts.GetRefreshTokenSession(c, fmt.Sprintf("rt-new-%d", i), openid.NewDefaultSession())
		_, atErr := ts.GetAccessTokenSession(c, fmt.Sprintf("at-new-%d", i), openid.NewDefaultSession())
		if (err == nil) != (rtErr == nil) || (err == nil) != (atErr == nil) {
			t.Errorf("refresh %d: %v; its new refresh token: %v, access token: %v", i, err, rtErr, atErr)
		}
	}
}

// testConcurrentCodeExchangeUnits: concurrent exchanges of one code, each
// in a unit of its own as the broker runs them: exactly one wins, and only
// the winner's access token and the spending of the code's PKCE data are
// stored.
func testConcurrentCodeExchangeUnits(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	errs := race(concurrency, func(i int) error {
		unit, end := ts.WithUnit(c)
		defer end()
		req, err := ts.GetAuthorizeCodeSession(unit, f.code, openid.NewDefaultSession())
		if err != nil {
			return err
		}
		return ts.Run(unit, func(ctx context.Context) error {
			if err := ts.InvalidateAuthorizeCodeSession(ctx, f.code); err != nil {
				return err
			}
			return ts.CreateAccessTokenSession(ctx, fmt.Sprintf("at-code-%d", i), req)
		})
	})
	exactlyOne(t, errs, func(err error) bool {
		return errorsIs(err, fosite.ErrInvalidatedAuthorizeCode) || errorsIs(err, fosite.ErrSerializationFailure)
	})
	_, err := ts.GetAuthorizeCodeSession(c, f.code, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrInvalidatedAuthorizeCode)
	for i, err := range errs {
		_, atErr := ts.GetAccessTokenSession(c, fmt.Sprintf("at-code-%d", i), openid.NewDefaultSession())
		if (err == nil) != (atErr == nil) {
			t.Errorf("exchange %d: %v; its access token: %v", i, err, atErr)
		}
	}
}

// testFailedUnitSpendsNothing: a unit whose writes fail to commit (here
// the last write fails on a key already taken, a real failing statement)
// spends neither the code nor the refresh token it redeemed, nor the
// code's PKCE data: the client may redeem them again.
func testFailedUnitSpendsNothing(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	f := issueFamily(t, ts, "app", "req-1", "u1")
	client, err := ts.GetClient(c, "app")
	must(t, err)
	pkceReq := newRequest(client, "req-1", "u1", time.Now().Add(time.Minute))
	must(t, ts.CreatePKCERequestSession(c, f.code, pkceReq))
	taken := issueFamily(t, ts, "app", "req-taken", "u1")

	unit, end := ts.WithUnit(c)
	req, err := ts.GetAuthorizeCodeSession(unit, f.code, openid.NewDefaultSession())
	must(t, err)
	err = ts.Run(unit, func(ctx context.Context) error {
		if err := ts.DeletePKCERequestSession(ctx, f.code); err != nil {
			return err
		}
		if err := ts.InvalidateAuthorizeCodeSession(ctx, f.code); err != nil {
			return err
		}
		return ts.CreateAccessTokenSession(ctx, taken.access, req) // fails at the commit
	})
	if err == nil {
		t.Fatal("a unit whose write fails succeeded")
	}
	f.assertActive(t, ts)
	_, err = ts.GetPKCERequestSession(c, f.code, openid.NewDefaultSession())
	must(t, err)

	end()
	unit, end = ts.WithUnit(c)
	defer end()
	stored, err := ts.GetRefreshTokenSession(unit, f.refresh, openid.NewDefaultSession())
	must(t, err)
	err = ts.Run(unit, func(ctx context.Context) error {
		return refresh(ctx, ts, "req-1", f.refresh, "at-new", taken.refresh, stored) // the new refresh token's key is taken
	})
	if err == nil {
		t.Fatal("a refresh whose write fails succeeded")
	}
	f.assertActive(t, ts)
	_, err = ts.GetAccessTokenSession(c, "at-new", openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)

	// Both redeem once the writes can succeed.
	must(t, ts.Run(unitOf(t, ts, c), func(ctx context.Context) error {
		return refresh(ctx, ts, "req-1", f.refresh, "at-new", "rt-new", stored)
	}))
	must(t, ts.Run(unitOf(t, ts, c), func(ctx context.Context) error {
		must(t, ts.DeletePKCERequestSession(ctx, f.code))
		return ts.InvalidateAuthorizeCodeSession(ctx, f.code)
	}))
	_, err = ts.GetPKCERequestSession(c, f.code, openid.NewDefaultSession())
	wantErr(t, err, fosite.ErrNotFound)
}

// unitOf is a new unit of ts that is ended when the test ends.
func unitOf(t *testing.T, ts *storage.TokenStore, c context.Context) context.Context {
	unit, end := ts.WithUnit(c)
	t.Cleanup(end)
	return unit
}
