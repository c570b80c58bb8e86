package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/internal/flow"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const (
	replicaRedirect = "http://127.0.0.1:5173/callback"
	replicaEmail    = "ada@example.com"
	replicaPassword = "correct horse battery staple"
	// keyReloadWait is serve's key reload interval (30 s) plus slack.
	keyReloadWait = 45 * time.Second
)

// replicaPair is two `bridgekeeper serve` processes on one Postgres
// database with one system secret, as behind a load balancer.
type replicaPair struct {
	env    []string
	dsn    string
	issuer string // both replicas' issuer (A's address stands for the load balancer)
	a, b   string // base URLs of replica A and replica B
	procs  []*testenv.Process
	pids   []int
}

// startReplicas sets up a fresh Postgres schema with a public client and
// a user, and starts two replicas on it. It skips the test without
// $BRIDGEKEEPER_TEST_POSTGRES.
func startReplicas(t *testing.T, extraArgs ...string) *replicaPair {
	t.Helper()
	return startReplicasAt(t, testenv.FreeAddr(t), testenv.FreeAddr(t), "", extraArgs...)
}

// startReplicasAt is startReplicas on given addresses (A's address is the
// issuer) and database (empty: a fresh storagetest schema).
func startReplicasAt(t *testing.T, addrA, addrB, dsn string, extraArgs ...string) *replicaPair {
	t.Helper()
	testenv.Require(t, os.Getenv(storagetest.PostgresEnv) != "",
		"Postgres for several replicas (set "+storagetest.PostgresEnv+", e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	p := &replicaPair{
		env: []string{"BRIDGEKEEPER_SYSTEM_SECRET=" + strings.Repeat("replica-secret-", 3)},
		dsn: dsn,
	}
	if p.dsn == "" {
		p.dsn = storagetest.Backend{Name: storage.DialectPostgres}.EmptyDSN(t)
	}
	testenv.CLI(t, p.env, "", "migrate", "--dsn", p.dsn)
	testenv.CLI(t, p.env, "", "client", "create", "--dsn", p.dsn, "--id", "spa", "--public",
		"--redirect-uri", replicaRedirect, "--allowed-origin", "http://127.0.0.1:5173")
	testenv.CLI(t, p.env, replicaPassword+"\n", "user", "create", "--dsn", p.dsn,
		"--email", replicaEmail, "--password-stdin")

	p.issuer = "http://" + addrA
	p.a, p.b = "http://"+addrA, "http://"+addrB
	for _, addr := range []string{addrA, addrB} {
		args := append([]string{"--issuer", p.issuer, "--listen", addr, "--dsn", p.dsn}, extraArgs...)
		proc := testenv.Serve(t, p.env, "http://"+addr, args...)
		p.procs = append(p.procs, proc)
		p.pids = append(p.pids, proc.Pid())
	}
	return p
}

func (p *replicaPair) client() *flow.Client { return flow.New("spa", replicaRedirect, nil) }

// login signs in on replica A and redeems the code on replica B.
func (p *replicaPair) login(t *testing.T, ctx context.Context, c *flow.Client) flow.Tokens {
	t.Helper()
	code, err := c.Login(ctx, p.a, replicaEmail, replicaPassword)
	if err != nil {
		t.Fatalf("login on A: %v", err)
	}
	tok, err := c.Exchange(ctx, p.b, code)
	if err != nil || !tok.OK() || tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("code from A exchanged on B: %v %v", tok, err)
	}
	return tok
}

func TestReplicasShareGrants(t *testing.T) {
	p := startReplicas(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := p.client()
	tok := p.login(t, ctx, c)

	// Each token verifies against the other replica's JWKS.
	verifyWith(t, p.a, tok.AccessToken)
	verifyWith(t, p.b, tok.IDToken)

	// The code is spent everywhere.
	code, err := c.Authorize(ctx, p.b) // the session cookie from A is good on B
	if err != nil {
		t.Fatalf("prompt=none on B with A's session: %v", err)
	}
	if first, _ := c.Exchange(ctx, p.a, code); !first.OK() {
		t.Fatalf("code from B on A: %v", first)
	}
	if again, _ := c.Exchange(ctx, p.b, code); again.OK() || again.Status >= 500 {
		t.Fatalf("a code redeemed on A was redeemed again on B: %v", again)
	}

	// Refresh on A, then the rotated-out token is refused on B.
	refreshed, err := c.Refresh(ctx, p.a, tok.RefreshToken)
	if err != nil || !refreshed.OK() || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh on A: %v %v", refreshed, err)
	}
	if status, err := c.Revoke(ctx, p.b, refreshed.RefreshToken); err != nil || status != http.StatusOK {
		t.Fatalf("revoke on B: %d %v", status, err)
	}
	for _, base := range []string{p.a, p.b} {
		if after, _ := c.Refresh(ctx, base, refreshed.RefreshToken); after.OK() || after.Error != "invalid_grant" {
			t.Errorf("token revoked on B still refreshes on %s: %v", base, after)
		}
	}
}

func TestReplicasOneWinnerPerRefresh(t *testing.T) {
	p := startReplicas(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := p.client()
	tok := p.login(t, ctx, c)

	// Several rounds: each time 8 clients race one refresh token, half of
	// them on each replica. The losers do not revoke the grant (the
	// default tokens.refresh_reuse_grace): the winner's new refresh token
	// goes on into the next round.
	for round := range 5 {
		const racers = 8
		results := make([]flow.Tokens, racers)
		errs := make([]error, racers)
		startLine := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			base := []string{p.a, p.b}[i%2]
			wg.Go(func() {
				<-startLine
				results[i], errs[i] = c.Refresh(ctx, base, tok.RefreshToken)
			})
		}
		close(startLine)
		wg.Wait()
		winners := 0
		for i, r := range results {
			switch {
			case errs[i] != nil:
				t.Errorf("round %d racer %d: %v", round, i, errs[i])
			case r.OK():
				winners++
				tok = r
			case r.Status != http.StatusBadRequest || r.Error != "invalid_grant":
				t.Errorf("round %d racer %d: a loser got %v, want 400 invalid_grant", round, i, r)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners of one refresh token, want exactly 1", round, winners)
		}
		// The winner's new refresh token works, on either replica; the next
		// round races the one this refresh gives.
		next, err := c.Refresh(ctx, []string{p.a, p.b}[round%2], tok.RefreshToken)
		if err != nil || !next.OK() {
			t.Fatalf("round %d: the winner's new refresh token no longer works: %v %v", round, next, err)
		}
		tok = next
	}
}

func TestReplicasServeKeysRotatedElsewhere(t *testing.T) {
	p := startReplicas(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := p.client()
	tok := p.login(t, ctx, c)
	before := jwksKIDs(t, p.b)
	oldKID := kidOf(t, tok.AccessToken)
	if !slices.Contains(before, oldKID) || len(before) < 2 {
		t.Fatalf("JWKS %v: want the signing key %s and a published next key", before, oldKID)
	}

	// An operator rotates from a third process (as `key rotate` on A's host).
	testenv.CLI(t, p.env, "", "key", "rotate", "--dsn", p.dsn)

	// B publishes the key created by the rotation within its reload interval.
	deadline := time.Now().Add(keyReloadWait)
	for {
		if slices.ContainsFunc(jwksKIDs(t, p.b), func(k string) bool { return !slices.Contains(before, k) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's JWKS still %v %v after the rotation", jwksKIDs(t, p.b), keyReloadWait)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// A signs with the promoted key, which both replicas published before
	// it signed anything; B's JWKS verifies it.
	refresh := tok.RefreshToken
	for {
		next, err := c.Refresh(ctx, p.a, refresh)
		if err != nil || !next.OK() {
			t.Fatalf("refresh on A: %v %v", next, err)
		}
		refresh = next.RefreshToken
		if kid := kidOf(t, next.AccessToken); kid != oldKID {
			if !slices.Contains(before, kid) {
				t.Errorf("A signs with %s, which was not published before the rotation (%v)", kid, before)
			}
			verifyWith(t, p.b, next.AccessToken)
			verifyWith(t, p.b, next.IDToken)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A still signs with %s %v after the rotation", oldKID, keyReloadWait)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Tokens signed before the rotation still verify on both replicas.
	verifyWith(t, p.a, tok.AccessToken)
	verifyWith(t, p.b, tok.AccessToken)
}

// jwks fetches base's JWKS.
func jwks(t *testing.T, base string) jose.JSONWebKeySet {
	t.Helper()
	res, err := http.Get(base + flow.PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var set jose.JSONWebKeySet
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &set) != nil {
		t.Fatalf("JWKS of %s: %d %s", base, res.StatusCode, body)
	}
	return set
}

func jwksKIDs(t *testing.T, base string) []string {
	var kids []string
	for _, k := range jwks(t, base).Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("not a JWS: %v", err)
	}
	return jws.Signatures[0].Header.KeyID
}

// verifyWith checks token's signature against base's JWKS.
func verifyWith(t *testing.T, base, token string) {
	t.Helper()
	jws, err := jose.ParseSigned(token, signingAlgs)
	if err != nil {
		t.Fatalf("not a JWS: %v", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	set := jwks(t, base)
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("%s's JWKS has no key %s", base, kid)
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		t.Fatalf("token signed with %s does not verify with %s's JWKS: %v", kid, base, err)
	}
}

func (p *replicaPair) String() string { return fmt.Sprintf("A=%s B=%s", p.a, p.b) }
