package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// txStore is the storage handed to fosite: *storage.Store plus a
// write-behind unit of work. Inside Server.withWrites, the writes fosite's
// handlers make (codes, tokens, rotation, PKCE and OIDC sessions) are
// recorded instead of executed, and the nested transactions fosite begins
// are no-ops; withWrites then runs all recorded writes in one short
// transaction once the response is fully built. The grant is atomic, and
// the slow part — signing the JWTs — never runs while a transaction holds
// SQLite's only writer connection (or Postgres row locks).
type txStore struct {
	*storage.Store
	reuseGrace time.Duration // Config.RefreshReuseGrace (replay.go)
	clients    *clientCache  // nil: no caching
	commits    groupCommit   // SQLite: concurrent grants share a commit
	// codeSignature gives the signature an authorization code is stored
	// under (fosite's strategy; set by newProvider).
	codeSignature func(code string) string
}

// useCodeSignature tells the store how fosite signs authorization codes,
// so that a code's row can carry its OpenID Connect session. Called once,
// before the server serves.
func (t *txStore) useCodeSignature(sig func(code string) string) {
	t.codeSignature = sig
	t.Store = t.Store.WithAuthorizeCodeSignature(sig)
}

// newTxStore wraps store with a client cache, which the token rows it
// loads take their client from too (fosite authenticated the same client
// a moment earlier).
func newTxStore(store *storage.Store, reuseGrace time.Duration) *txStore {
	cache := newClientCache(clientCacheTTL)
	return &txStore{
		Store: store.WithClientSource(func(ctx context.Context, id string) (*storage.Client, error) {
			return cache.get(ctx, id, store.LookupClient)
		}),
		reuseGrace: reuseGrace,
		clients:    cache,
	}
}

type writeBufferKey struct{}

// writeBuffer records deferred writes in order.
type writeBuffer struct {
	mu  sync.Mutex
	ops []func(ctx context.Context) error
	// codes are the authorization codes recorded, by signature, with the
	// parts recorded after them (see CreateAuthorizeCodeSession).
	codes map[string]*codeBundle
}

// codeBundle is an authorization code and the PKCE request and OpenID
// Connect session fosite stores for it, each encoded when fosite handed
// it over; storage writes them as one row when they agree.
type codeBundle struct {
	code       storage.EncodedRequest
	pkce, oidc *storage.EncodedRequest
}

// attach encodes a part of the authorization of the code with this
// signature and records it in the code's bundle with set; it reports
// false, having encoded nothing, when the buffer holds no such code.
func (b *writeBuffer) attach(signature string, encode func() (storage.EncodedRequest, error), set func(*codeBundle, *storage.EncodedRequest)) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bundle := b.codes[signature]
	if bundle == nil {
		return false, nil
	}
	part, err := encode()
	if err != nil {
		return false, err
	}
	set(bundle, &part)
	return true, nil
}

func bufferFrom(ctx context.Context) *writeBuffer {
	b, _ := ctx.Value(writeBufferKey{}).(*writeBuffer)
	return b
}

// deferWrite records op when ctx carries a write buffer, else runs it.
func deferWrite(ctx context.Context, op func(ctx context.Context) error) error {
	b := bufferFrom(ctx)
	if b == nil {
		return op(ctx)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ops = append(b.ops, op)
	return nil
}

func (t *txStore) BeginTX(ctx context.Context) (context.Context, error) {
	if bufferFrom(ctx) != nil {
		return ctx, nil
	}
	return t.Store.BeginTX(ctx)
}

func (t *txStore) Commit(ctx context.Context) error {
	if bufferFrom(ctx) != nil {
		return nil
	}
	return t.Store.Commit(ctx)
}

func (t *txStore) Rollback(ctx context.Context) error {
	if bufferFrom(ctx) != nil {
		return nil
	}
	return t.Store.Rollback(ctx)
}

// CreateAuthorizeCodeSession records the code in the write buffer as a
// bundle: fosite's OpenID Connect and PKCE handlers store their parts of
// the same authorization next (CreateOpenIDConnectSession,
// CreatePKCERequestSession), and the three are written together.
func (t *txStore) CreateAuthorizeCodeSession(ctx context.Context, sig string, req fosite.Requester) error {
	b := bufferFrom(ctx)
	if b == nil {
		return t.Store.CreateAuthorizeCodeSession(ctx, sig, req)
	}
	code, err := storage.EncodeAuthorizeCodeSession(sig, req)
	if err != nil {
		return err
	}
	bundle := &codeBundle{code: code}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.codes == nil {
		b.codes = map[string]*codeBundle{}
	}
	b.codes[sig] = bundle
	b.ops = append(b.ops, func(ctx context.Context) error {
		w, err := t.Store.PrepareCreateAuthorizeCode(bundle.code, bundle.pkce, bundle.oidc)
		if err != nil {
			return err
		}
		return w(ctx)
	})
	return nil
}

func (t *txStore) InvalidateAuthorizeCodeSession(ctx context.Context, sig string) error {
	return deferWrite(ctx, func(ctx context.Context) error { return t.Store.InvalidateAuthorizeCodeSession(ctx, sig) })
}

func (t *txStore) CreateAccessTokenSession(ctx context.Context, sig string, req fosite.Requester) error {
	if sess, ok := req.GetSession().(*session); ok && sess.AccessAudience != nil {
		// The access token's row carries its narrowed audience (for
		// introspection); the refresh token keeps the grant's.
		if r, ok := req.(*fosite.Request); ok {
			c := *r // encoded at once: a shallow copy is enough
			c.GrantedAudience = slices.Clone(sess.AccessAudience)
			req = &c
		}
	}
	return deferPrepared(t.Store.PrepareCreateAccessTokenSession(sig, req))(ctx)
}

func (t *txStore) CreateRefreshTokenSession(ctx context.Context, sig, accessSig string, req fosite.Requester) error {
	if sess, ok := req.GetSession().(*session); ok && sess.GrantScopes != nil {
		// A refresh narrowed the scope of what it issued; the refresh
		// token keeps the grant's (RFC 6749 section 6).
		if r, ok := req.(*fosite.Request); ok {
			c := *r // encoded at once: a shallow copy is enough
			c.GrantedScope = slices.Clone(sess.GrantScopes)
			req = &c
		}
	}
	return deferPrepared(t.Store.PrepareCreateRefreshTokenSession(sig, accessSig, req))(ctx)
}

func (t *txStore) RotateRefreshToken(ctx context.Context, requestID, sig string) error {
	return deferWrite(ctx, func(ctx context.Context) error { return t.Store.RotateRefreshToken(ctx, requestID, sig) })
}

func (t *txStore) CreateOpenIDConnectSession(ctx context.Context, code string, req fosite.Requester) error {
	if b := bufferFrom(ctx); b != nil && t.codeSignature != nil {
		encode := func() (storage.EncodedRequest, error) { return storage.EncodeOpenIDConnectSession(code, req) }
		if ok, err := b.attach(t.codeSignature(code), encode, func(c *codeBundle, p *storage.EncodedRequest) { c.oidc = p }); ok || err != nil {
			return err
		}
	}
	return deferPrepared(t.Store.PrepareCreateOpenIDConnectSession(code, req))(ctx)
}

func (t *txStore) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return deferWrite(ctx, func(ctx context.Context) error { return t.Store.DeleteOpenIDConnectSession(ctx, code) })
}

func (t *txStore) CreatePKCERequestSession(ctx context.Context, sig string, req fosite.Requester) error {
	if b := bufferFrom(ctx); b != nil {
		encode := func() (storage.EncodedRequest, error) { return storage.EncodePKCERequestSession(sig, req) }
		if ok, err := b.attach(sig, encode, func(c *codeBundle, p *storage.EncodedRequest) { c.pkce = p }); ok || err != nil {
			return err
		}
	}
	return deferPrepared(t.Store.PrepareCreatePKCERequestSession(sig, req))(ctx)
}

// DeletePKCERequestSession is deferred too: fosite's PKCE handler deletes
// the code's PKCE data while checking the token request, before the grant
// is made. Done at once, a grant that then fails on the database (a
// restart, a lost connection) would leave the client a code it can never
// redeem; deferred, the code stays redeemable until a grant succeeds.
func (t *txStore) DeletePKCERequestSession(ctx context.Context, sig string) error {
	return deferWrite(ctx, func(ctx context.Context) error { return t.Store.DeletePKCERequestSession(ctx, sig) })
}

// deferPrepared records (or, without a write buffer, runs) a write whose
// request storage encoded when fosite handed it over: fosite keeps
// changing the shared session afterwards, and nothing is left to encode
// once the transaction holds the writer.
func deferPrepared(w storage.PreparedWrite, err error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err != nil {
			return err
		}
		return deferWrite(ctx, w)
	}
}

// withWrites runs fn (NewAuthorizeResponse or NewAccessResponse) with a
// write buffer, then applies the recorded writes in one transaction.
// Errors are fosite errors: a write that lost a race (the code or refresh
// token was used concurrently) is invalid_grant, a serialization failure
// asks the client to retry, anything else is a server error. Nothing is
// written when fn fails.
func (s *Server) withWrites(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.withBufferedWrites(ctx, &writeBuffer{}, fn)
}

// withBufferedWrites is withWrites adding to writes already recorded in
// buf (by the token request's checks).
func (s *Server) withBufferedWrites(ctx context.Context, buf *writeBuffer, fn func(ctx context.Context) error) error {
	if err := fn(context.WithValue(ctx, writeBufferKey{}, buf)); err != nil {
		return lostRace(err)
	}
	if len(buf.ops) == 0 {
		return nil
	}
	if s.store.Store.Dialect() == storage.DialectSQLite {
		if err := s.store.commits.apply(ctx, s.store.Store, buf.ops); err != nil {
			return s.writeError(ctx, err)
		}
		return nil
	}
	txCtx, err := s.store.Store.BeginTX(ctx)
	if err != nil {
		return s.writeError(ctx, err)
	}
	for _, op := range buf.ops {
		if err := op(txCtx); err != nil {
			if rbErr := s.store.Store.Rollback(txCtx); rbErr != nil {
				s.log.ErrorContext(ctx, "rollback", "err", rbErr)
			}
			return s.writeError(ctx, err)
		}
	}
	if err := s.store.Store.Commit(txCtx); err != nil {
		return s.writeError(ctx, err)
	}
	return nil
}

// writeError is storageError, except that a write failing because the
// database cannot be reached is a 503 temporarily_unavailable: the client
// may retry, and nothing was spent.
func (s *Server) writeError(ctx context.Context, err error) error {
	rfc := storageError(err)
	if errors.Is(rfc, fosite.ErrServerError) && s.store.Store.Ping(ctx) != nil {
		return outage(unavailable(err))
	}
	return rfc
}

// lostRace turns the server error fosite answers when a concurrent request
// used the same code or refresh token between its checks (fosite's
// PopulateTokenEndpointResponse reads the code again and calls any error a
// server error) into the invalid_grant the loser of that race deserves.
func lostRace(err error) error {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) && rfc.ErrorField == fosite.ErrServerError.ErrorField &&
		(errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrInactiveToken)) {
		return storageError(err)
	}
	return err
}

func storageError(err error) error {
	switch {
	case errors.Is(err, fosite.ErrSerializationFailure):
		return fosite.ErrInvalidRequest.WithWrap(err).WithDebug(err.Error()).
			WithHint("The request conflicted with a concurrent request. Please retry the request.")
	case errors.Is(err, fosite.ErrNotFound), errors.Is(err, fosite.ErrInactiveToken), errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		return fosite.ErrInvalidGrant.WithWrap(err).WithDebug(err.Error()).
			WithHint("The authorization code or refresh token was used by a concurrent request.")
	default:
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
}

// groupCommit applies the recorded writes of concurrent requests on SQLite
// in shared transactions (storage.InTxEach): one request's failure undoes
// only its writes.
// SQLite has one writer connection, so write transactions run one after
// the other anyway; handing that connection from request to request meant
// one scheduling hand-over per request, and the next request often
// waited behind goroutines busy signing while the connection sat idle.
// Now the first request to arrive leads: it commits everything pending,
// then hands the lead to a request that arrived meanwhile.
type groupCommit struct {
	mu      sync.Mutex
	leading bool
	pending []*pendingWrites
}

type pendingWrites struct {
	ops  []func(ctx context.Context) error
	done chan error    // the outcome
	lead chan struct{} // this request is to commit the pending writes
}

// maxGroup bounds how many requests share one commit.
const maxGroup = 32

func (g *groupCommit) apply(ctx context.Context, store *storage.Store, ops []func(ctx context.Context) error) error {
	p := &pendingWrites{ops: ops, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, p)
	if g.leading {
		g.mu.Unlock()
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}

	g.commitGroup(ctx, store) // p leads, and is pending: it is in the group
	return <-p.done
}

// commitGroup commits up to maxGroup pending requests' writes, then hands
// the lead to the next pending request, if any.
func (g *groupCommit) commitGroup(ctx context.Context, store *storage.Store) {
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	group := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	fns := make([]func(ctx context.Context) error, len(group))
	for i, q := range group {
		fns[i] = func(ctx context.Context) error {
			for _, op := range q.ops {
				if err := op(ctx); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var errs []error
	defer func() {
		// Even if a write panicked: answer the group and pass the lead on,
		// or every later grant would wait forever.
		if r := recover(); r != nil {
			errs = make([]error, len(group))
			for i := range errs {
				errs[i] = fmt.Errorf("broker: a write of a grant committed with this one panicked: %v", r)
			}
			defer panic(r)
		}
		for i, q := range group {
			q.done <- errs[i]
		}
		g.mu.Lock()
		if len(g.pending) > 0 {
			g.pending[0].lead <- struct{}{}
		} else {
			g.leading = false
		}
		g.mu.Unlock()
	}()
	// The group's writes are not the leader's alone: its cancellation
	// must not abort them.
	errs = store.InTxEach(context.WithoutCancel(ctx), fns)
}
