package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
)

// A unit is the writes of one authorize or token request, recorded in
// order while the request is handled and applied together by Run.

type writeBufferKey struct{}

// writeBuffer records deferred writes in order.
type writeBuffer struct {
	mu  sync.Mutex
	ops []func(ctx context.Context) error
	// codes are the authorization codes recorded, by signature, with the
	// parts recorded after them (see CreateAuthorizeCodeSession).
	codes map[string]*codeBundle
	// counted: the unit counts in groupCommit.inFlight (WithUnit) and
	// has neither arrived at a commit nor ended.
	counted bool
}

// codeBundle is an authorization code and the PKCE request and OpenID
// Connect session fosite stores for it, each encoded when fosite handed
// it over; they are written as one row when they agree.
type codeBundle struct {
	code       encodedRequest
	pkce, oidc *encodedRequest
}

// attach encodes a part of the authorization of the code with this
// signature and records it in the code's bundle with set; it reports
// false, having encoded nothing, when the buffer holds no such code.
func (b *writeBuffer) attach(signature string, encode func() (encodedRequest, error), set func(*codeBundle, *encodedRequest)) (bool, error) {
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

// take empties the buffer and returns what it held.
func (b *writeBuffer) take() []func(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ops := b.ops
	b.ops, b.codes = nil, nil
	return ops
}

func bufferFrom(ctx context.Context) *writeBuffer {
	b, _ := ctx.Value(writeBufferKey{}).(*writeBuffer)
	return b
}

// WithUnit returns a context carrying a new unit: the token store's writes
// through it (and Record's) are recorded until Run applies them. A token
// row read outside a transaction in it is read from the database once
// (fosite reads an authorization code twice during its exchange; the
// recorded invalidation, which commits only while the code is still
// unused, is what catches a concurrent use). A unit is for one request,
// never for a long-lived context.
//
// The unit counts as on its way to a commit (other units' commits wait
// for it briefly, see groupCommit) until Run applies it or end is called:
// call end (it may be deferred; calling it after Run, or twice, is
// harmless) once the request is done with the unit, or a request that
// fails before Run would delay later commits.
func (t *TokenStore) WithUnit(ctx context.Context) (unit context.Context, end func()) {
	b := &writeBuffer{}
	if t.s.dialect == DialectSQLite {
		t.commits.depart()
		b.counted = true
	}
	return context.WithValue(withReadMemo(ctx), writeBufferKey{}, b), func() {
		if b.leave() {
			t.commits.cancel()
		}
	}
}

// leave reports whether the unit was counted in flight, and forgets it.
func (b *writeBuffer) leave() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.counted
	b.counted = false
	return c
}

// Record records op in ctx's unit, to run in the unit's transaction when
// Run applies it; outside a unit it runs op at once.
func (t *TokenStore) Record(ctx context.Context, op func(ctx context.Context) error) error {
	b := bufferFrom(ctx)
	if b == nil {
		return op(ctx)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ops = append(b.ops, op)
	return nil
}

// Run runs fn (fosite's NewAuthorizeResponse or NewAccessResponse; nil:
// nothing) in ctx's unit, or in a new one when ctx carries none, then
// applies every write the unit recorded — before and during fn — in one
// transaction, and empties the unit. Nothing is written when fn fails.
//
// Errors are fosite errors: a write that lost a race (the code or refresh
// token was used concurrently) is invalid_grant, a serialization failure
// asks the client to retry, a database that cannot be reached is
// ErrUnavailable (nothing was spent: the client may retry), anything else
// is a server error.
func (t *TokenStore) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	b := bufferFrom(ctx)
	if b == nil {
		b = &writeBuffer{}
		ctx = context.WithValue(ctx, writeBufferKey{}, b)
	}
	sqlite := t.s.dialect == DialectSQLite
	inFlight := b.leave() // counted by WithUnit: apply counts its arrival
	if inFlight {
		defer func() {
			if inFlight { // fn failed or panicked, or the unit wrote nothing
				t.commits.cancel()
			}
		}()
	}
	if fn != nil {
		if err := fn(ctx); err != nil {
			return lostRace(err)
		}
	}
	ops := b.take()
	if len(ops) == 0 {
		return nil
	}
	// The writes run without the unit: they are the real ones.
	ctx = context.WithValue(ctx, writeBufferKey{}, (*writeBuffer)(nil))
	if sqlite {
		arriving := inFlight
		inFlight = false
		if err := t.commits.apply(ctx, t.s, arriving, ops); err != nil {
			return t.writeError(ctx, err)
		}
		return nil
	}
	txCtx, err := t.s.BeginTX(ctx)
	if err != nil {
		return t.writeError(ctx, err)
	}
	for _, op := range ops {
		if err := op(txCtx); err != nil {
			if rbErr := t.s.Rollback(txCtx); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
			return t.writeError(ctx, err)
		}
	}
	// If the commit's answer is lost (the connection breaks, Postgres
	// restarts), the transaction may have committed all the same: the
	// code or refresh token is then spent, and answering an error would
	// leave the client with nothing. Its id tells.
	xid, err := t.s.transactionID(txCtx)
	if err != nil {
		if rbErr := t.s.Rollback(txCtx); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		return t.writeError(ctx, err)
	}
	if err := t.s.Commit(txCtx); err != nil {
		if xid != "" && t.s.committed(ctx, xid, commitCheckLimit) {
			return nil
		}
		return t.writeError(ctx, err)
	}
	return nil
}

// commitCheckLimit bounds how long Run waits for the database to say
// whether a transaction whose commit failed committed after all.
const commitCheckLimit = 15 * time.Second

// Statements that resolve a commit whose answer was lost (Postgres).
const (
	sqlTransactionID = "SELECT txid_current()::text"
	sqlTxStatus      = "SELECT COALESCE(txid_status(?::bigint), 'unknown')"
)

// transactionID is the Postgres id of the transaction in ctx ("" on SQLite,
// whose commits are not lost in flight, or when it has not begun).
func (s *Store) transactionID(ctx context.Context) (string, error) {
	ref := txFrom(ctx)
	if s.dialect != DialectPostgres || ref == nil {
		return "", nil
	}
	ref.state.mu.Lock()
	tx := ref.state.tx
	ref.state.mu.Unlock()
	if tx == nil {
		return "", nil
	}
	ids, err := queryStrings(ctx, s.runner(*tx), sqlTransactionID)
	if err != nil || len(ids) != 1 {
		return "", s.wrap("transaction id", errors.Join(err, errors.New("no transaction id")))
	}
	return ids[0], nil
}

// committed reports whether the transaction xid, whose commit failed,
// committed all the same. It waits, up to limit, for the database to
// answer and for the transaction to end (a backend whose client went away
// finishes it on its own); false when it cannot tell.
func (s *Store) committed(ctx context.Context, xid string, limit time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		status, err := queryStrings(ctx, s.runner(s.db), sqlTxStatus, xid)
		if err == nil && len(status) == 1 {
			switch status[0] {
			case "committed":
				return true
			case "aborted", "unknown":
				return false
			}
			// "in progress": the backend has not noticed yet
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// writeError is storageError, except that a write failing because the
// database cannot be reached is ErrUnavailable: the client may retry, and
// nothing was spent.
func (t *TokenStore) writeError(ctx context.Context, err error) error {
	rfc := storageError(err)
	if errors.Is(rfc, fosite.ErrServerError) && t.s.Ping(ctx) != nil {
		return unavailable(err)
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

// storageError is the fosite error of a failed write.
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

// groupCommit applies the recorded writes of concurrent units on SQLite
// in shared transactions (Store.InTxEach): one unit's failure undoes only
// its writes.
// SQLite has one writer connection, so write transactions run one after
// the other anyway; handing that connection from request to request meant
// one scheduling hand-over per request, and the next request often
// waited behind goroutines busy signing while the connection sat idle.
// Now the first unit to arrive leads: it commits everything pending,
// then hands the lead to a unit that arrived meanwhile.
//
// A commit costs about as much CPU as the writes of several grants (every
// page it dirties is written to the log), and requests that sign arrive
// more slowly than a commit takes: left alone, groups hold one or two
// units. So, like Postgres's commit_delay with commit_siblings, a leader
// waits for the units in flight (begun with WithUnit, neither applied nor
// ended: they are being checked or signed, and about to arrive) and for
// as many units as the last commit carried (see gather), at most
// maxGather. A unit alone (nothing in flight, the last commit alone or
// long ago) commits at once. The wait costs no CPU; the cores go on
// signing meanwhile.
type groupCommit struct {
	mu       sync.Mutex
	leading  bool
	pending  []*pendingWrites
	inFlight int           // units begun and not yet arrived or ended
	waiting  bool          // a leader is gathering: wake it on a change
	changed  chan struct{} // wakes the gathering leader (capacity 1)
	lastSize int           // units in the last commit
	lastEnd  time.Time     // when it ended
	// maxGather bounds the leader's wait (0: defaultMaxGather);
	// recentCommit is how recent the last commit must be for its size to
	// count (0: defaultRecentCommit).
	maxGather, recentCommit time.Duration

	// For tests: commits made, units they carried, leaders that waited.
	commits, units, gathers atomic.Int64
}

type pendingWrites struct {
	ops  []func(ctx context.Context) error
	done chan error    // the outcome
	lead chan struct{} // this unit is to commit the pending writes
}

// maxGroup bounds how many units share one commit.
const maxGroup = 32

// defaultMaxGather bounds how long a leader waits for units in flight:
// about one RS256 signature on a busy core, a fraction of a grant's time
// on the wire.
const defaultMaxGather = time.Millisecond

// defaultRecentCommit: a commit that ended longer ago than this says
// nothing about the load.
const defaultRecentCommit = 5 * time.Millisecond

// depart counts a unit that will arrive with writes soon (its fn runs).
func (g *groupCommit) depart() {
	g.mu.Lock()
	g.inFlight++
	g.mu.Unlock()
}

// cancel undoes depart for a unit that will not arrive (its fn failed, or
// it wrote nothing).
func (g *groupCommit) cancel() {
	g.mu.Lock()
	g.inFlight--
	g.wakeLocked()
	g.mu.Unlock()
}

// wakeLocked wakes a gathering leader; g.mu is held.
func (g *groupCommit) wakeLocked() {
	if !g.waiting {
		return
	}
	select {
	case g.changed <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// apply commits ops with other units' and returns their outcome; inFlight
// says the unit was counted by depart.
func (g *groupCommit) apply(ctx context.Context, store *Store, inFlight bool, ops []func(ctx context.Context) error) error {
	p := &pendingWrites{ops: ops, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, p)
	if inFlight {
		g.inFlight--
	}
	if g.leading {
		g.wakeLocked()
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

	g.gather()
	g.commitGroup(ctx, store) // p leads, and is pending: it is in the group
	return <-p.done
}

// gather waits, as the leader, until every unit in flight has arrived (or
// given up) and the group is as large as the last one (when that one
// committed within recentCommit), until the group is full, or until
// maxGather has passed.
//
// The last group's size stands for the requests on their way that no
// count sees: under load, a goroutine whose request will become a unit
// often has not run yet (the cores are busy signing), and the unit that
// arrives first would otherwise commit alone, again and again.
func (g *groupCommit) gather() {
	g.mu.Lock()
	defer g.mu.Unlock()
	target := 1
	recent := g.recentCommit
	if recent <= 0 {
		recent = defaultRecentCommit
	}
	if g.lastSize > 1 && time.Since(g.lastEnd) < recent {
		target = g.lastSize
	}
	want := func() bool {
		return (g.inFlight > 0 || len(g.pending) < target) && len(g.pending) < maxGroup
	}
	if !want() {
		return
	}
	g.gathers.Add(1)
	if g.changed == nil {
		g.changed = make(chan struct{}, 1)
	}
	limit := g.maxGather
	if limit <= 0 {
		limit = defaultMaxGather
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	g.waiting = true
	defer func() { g.waiting = false }()
	for want() {
		g.mu.Unlock()
		select {
		case <-g.changed:
			g.mu.Lock()
		case <-timer.C:
			g.mu.Lock()
			return
		}
	}
}

// commitGroup commits up to maxGroup pending units' writes, then hands
// the lead to the next pending unit, if any.
func (g *groupCommit) commitGroup(ctx context.Context, store *Store) {
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	group := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	g.commits.Add(1)
	g.units.Add(int64(n))
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
				errs[i] = fmt.Errorf("storage: a write of a grant committed with this one panicked: %v", r)
			}
			defer panic(r)
		}
		for i, q := range group {
			q.done <- errs[i]
		}
		g.mu.Lock()
		g.lastSize, g.lastEnd = len(group), time.Now()
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
