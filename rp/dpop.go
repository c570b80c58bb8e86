package rp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
)

// DPoP (RFC 9449). A token whose cnf.jkt names a key is bound to that key:
// it is accepted only as "Authorization: DPoP <token>" with a DPoP header
// holding a fresh proof signed by the key, and refused as a bearer token.

// Defaults of the DPoP options.
const (
	// DefaultProofMaxAge is how old a proof's iat may be, and
	// DefaultProofLeeway how far in the future (client clock skew).
	DefaultProofMaxAge = dpop.DefaultMaxAge
	DefaultProofLeeway = dpop.DefaultLeeway
	// DefaultReplayCacheSize bounds the in-memory replay cache.
	DefaultReplayCacheSize = 100_000
)

// DefaultProofAlgorithms are the proof algorithms accepted by default.
var DefaultProofAlgorithms = slices.Clone(dpop.DefaultAlgorithms)

// A ReplayCache remembers the proofs a Verifier has accepted, so that each
// is accepted once. Claim records key until expires and returns nil; when
// key is already recorded and unexpired it returns an error wrapping
// ErrProofReplayed; any other error (the store is down, or full) refuses
// the request with 503, never lets it through.
//
// The default, NewMemoryReplayCache, serves one process. Several replicas of
// an API behind a load balancer each have their own, so a proof accepted by
// one could be replayed to another within its window (DefaultProofMaxAge):
// give them a cache they share, whose Claim is one atomic
// insert-if-absent with an expiry — Redis "SET key 1 NX PXAT expires-ms"
// (nil reply: replayed), or an SQL upsert keyed by key that takes over an
// expired row and changes nothing for a live one (no row changed: replayed;
// docs/rp.md shows one for Postgres and SQLite). Keys are fixed-length
// base64url.
type ReplayCache interface {
	Claim(ctx context.Context, key string, expires time.Time) error
}

// ErrProofReplayed is what a ReplayCache returns (wrapped) for a key it has
// already seen; Verify refuses the proof with invalid_dpop_proof.
var ErrProofReplayed = dpop.ErrReplay

// NewMemoryReplayCache returns the in-process ReplayCache Verifier uses by
// default, holding at most size unexpired proofs (DefaultReplayCacheSize
// when size ≤ 0), each until its iat leaves the accepted window. When full
// it does not forget a live proof (which would let it be replayed): it
// refuses new ones, and the middleware answers 503, until some expire.
func NewMemoryReplayCache(size int) ReplayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return dpop.NewMemoryReplayCache(size)
}

// WithDPoPRequired makes every token need DPoP: an unbound token is refused
// (invalid_token), whatever the scheme it comes with.
func WithDPoPRequired() Option {
	return func(c *config) { c.dpopRequired = true }
}

// WithDPoPRequiredFor makes the tokens of the listed clients (client_id)
// need DPoP; other clients' tokens may still be bearer tokens. Bound tokens
// need their proof whatever the client.
func WithDPoPRequiredFor(clientIDs ...string) Option {
	return func(c *config) { c.dpopClients = append(c.dpopClients, clientIDs...) }
}

// WithProofAlgorithms sets the algorithms accepted for proofs
// (DefaultProofAlgorithms); symmetric algorithms and none are never
// accepted.
func WithProofAlgorithms(algs ...jose.SignatureAlgorithm) Option {
	return func(c *config) { c.proofAlgs = algs }
}

// WithProofWindow sets how old a proof's iat may be and how far in the
// future (DefaultProofMaxAge, DefaultProofLeeway). The replay cache keeps
// each proof this long.
func WithProofWindow(maxAge, leeway time.Duration) Option {
	return func(c *config) { c.proofMaxAge, c.proofLeeway = maxAge, leeway }
}

// WithReplayCache replaces the in-memory replay cache, e.g. by one several
// replicas share (see ReplayCache).
func WithReplayCache(cache ReplayCache) Option {
	return func(c *config) { c.replay = cache }
}

// WithDPoPNonce makes proofs carry a server nonce (RFC 9449 §9): a proof
// without a current one is refused with use_dpop_nonce and the answer's
// DPoP-Nonce header gives the nonce to use; every answer to a DPoP request
// carries the current nonce. Nonces are derived from secret (32 bytes or
// more) and the time, a new one every period (a minute when ≤ 0), each
// accepted for up to two periods: replicas given the same secret accept
// each other's nonces without sharing any state.
func WithDPoPNonce(secret []byte, period time.Duration) Option {
	return func(c *config) { c.nonceSecret, c.noncePeriod = secret, period }
}

// WithPublicURL sets the API's base URL as its clients call it (scheme,
// host, port, and any path prefix a proxy strips), e.g.
// "https://api.example.com". A proof's htu must be this plus the request's
// path. Without it the URL is rebuilt from the request (its Host header,
// and https when the connection is TLS): set it whenever a proxy is in
// front of the API or the API answers to several names, else a proof made
// for another host could be accepted.
func WithPublicURL(url string) Option {
	return func(c *config) { c.publicURL = strings.TrimSuffix(url, "/") }
}

// dpopVerifier is the Verifier's DPoP state.
type dpopVerifier struct {
	proofs    *dpop.Verifier
	nonces    *dpop.Nonces
	required  bool
	clients   map[string]bool
	publicURL string
	algs      string // for WWW-Authenticate
}

func newDPoPVerifier(cfg *config) (*dpopVerifier, error) {
	for _, a := range cfg.proofAlgs {
		if !slices.Contains(dpop.DefaultAlgorithms, a) && a != jose.RS384 && a != jose.RS512 &&
			a != jose.PS384 && a != jose.PS512 {
			return nil, fmt.Errorf("rp: %q is not an asymmetric signature algorithm", a)
		}
	}
	d := &dpopVerifier{
		proofs: &dpop.Verifier{
			Algorithms: cfg.proofAlgs,
			MaxAge:     cfg.proofMaxAge,
			Leeway:     cfg.proofLeeway,
			Now:        cfg.now,
			Replay:     cfg.replay,
		},
		required:  cfg.dpopRequired,
		publicURL: cfg.publicURL,
	}
	if d.proofs.Replay == nil {
		memory := dpop.NewMemoryReplayCache(DefaultReplayCacheSize)
		memory.Now = cfg.now
		d.proofs.Replay = memory
	}
	if cfg.nonceSecret != nil {
		if len(cfg.nonceSecret) < 32 {
			return nil, errors.New("rp: the DPoP nonce secret needs 32 bytes or more")
		}
		d.nonces = dpop.NewNonces(cfg.nonceSecret, cfg.noncePeriod)
		d.nonces.Now = cfg.now
		d.proofs.Nonce = d.nonces.Check
	}
	if len(cfg.dpopClients) > 0 {
		d.clients = make(map[string]bool, len(cfg.dpopClients))
		for _, id := range cfg.dpopClients {
			d.clients[id] = true
		}
	}
	d.algs = strings.Join(d.proofs.AllowedAlgorithms(), " ")
	if cfg.publicURL != "" {
		if _, err := dpop.NormalizeURL(cfg.publicURL + "/"); err != nil {
			return nil, fmt.Errorf("rp: public URL: %w", err)
		}
	}
	return d, nil
}

// mustBeBound reports whether claims need DPoP under the configuration.
func (d *dpopVerifier) mustBeBound(c *Claims) bool {
	return d.required || d.clients[c.ClientID]
}

// checkBearer refuses, for a bearer presentation, a token that is bound or
// must be.
func (d *dpopVerifier) checkBearer(c *Claims) error {
	switch {
	case c.JKT != "":
		return ErrTokenBound
	case d.mustBeBound(c):
		return ErrNotBound
	}
	return nil
}

// VerifyDPoP checks a DPoP-bound access token presented as
// "Authorization: DPoP <token>" together with proof, the request's DPoP
// header, for a request of method to url (the absolute URL the client
// called; its query is ignored). The token must be valid as for Verify and
// carry cnf.jkt; the proof must be signed by that key with an allowed
// algorithm, name method and url, hash the token in ath, be recent (iat),
// carry the current nonce when WithDPoPNonce is set, and never have been
// used before.
//
// Refusals match ErrInvalidToken (the token: invalid, unbound, or bound to
// another key — ErrKeyBinding), ErrInvalidProof (the proof) or
// ErrUseNonce; any other error (ErrKeysUnavailable, a failing replay cache)
// is the server's.
func (v *Verifier) VerifyDPoP(ctx context.Context, token, proof, method, url string) (*Claims, error) {
	claims, err := v.verifyBound(ctx, token)
	if err != nil {
		return nil, err
	}
	return v.checkProof(ctx, claims, token, proof, method, url)
}

// verifyDPoPRequest is VerifyDPoP for the middleware: the token is checked
// first, so that a bad token is named as such whatever the proof.
func (v *Verifier) verifyDPoPRequest(ctx context.Context, token string, r *http.Request) (*Claims, error) {
	claims, err := v.verifyBound(ctx, token)
	if err != nil {
		return nil, err
	}
	proof, err := dpop.FromHeader(r.Header)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	url, err := v.dpop.requestURL(r)
	if err != nil {
		return nil, err
	}
	return v.checkProof(ctx, claims, token, proof, r.Method, url)
}

func (v *Verifier) verifyBound(ctx context.Context, token string) (*Claims, error) {
	claims, err := v.verifyToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if claims.JKT == "" {
		return nil, ErrNotBound
	}
	return claims, nil
}

func (v *Verifier) checkProof(ctx context.Context, claims *Claims, token, proof, method, url string) (*Claims, error) {
	req := dpop.Request{Method: method, URL: url, AccessToken: token, JKT: claims.JKT}
	if _, err := v.dpop.proofs.Verify(ctx, proof, req); err != nil {
		return nil, proofError(err)
	}
	return claims, nil
}

// proofError turns an error of dpop.Verifier.Verify into rp's.
func proofError(err error) error {
	switch {
	case dpop.Code(err) == "": // not the proof's fault: the replay cache failed
		return fmt.Errorf("rp: DPoP: %w", err)
	case errors.Is(err, dpop.ErrKeyMismatch):
		return fmt.Errorf("%w: %w", ErrKeyBinding, err)
	case dpop.Code(err) == dpop.CodeUseNonce:
		return fmt.Errorf("%w: %w", ErrUseNonce, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalidProof, err)
}

// requestURL is the URL a proof for r must name. Rebuilt from a Host
// header that makes no URL, it refuses the proof, which cannot match.
func (d *dpopVerifier) requestURL(r *http.Request) (string, error) {
	if d.publicURL != "" {
		return d.publicURL + r.URL.EscapedPath(), nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	url := scheme + "://" + r.Host + r.URL.EscapedPath()
	if _, err := dpop.NormalizeURL(url); err != nil {
		return "", fmt.Errorf("%w: the request's Host makes no URL", ErrInvalidProof)
	}
	return url, nil
}

// describeDPoP is the error_description of a DPoP refusal.
func describeDPoP(err error) string {
	var e *dpop.Error
	switch {
	case errors.Is(err, ErrKeyBinding):
		return "Invalid DPoP key binding"
	case errors.As(err, &e):
		return e.Description()
	case errors.Is(err, ErrTokenBound):
		return "DPoP-bound token presented as Bearer"
	case errors.Is(err, ErrNotBound):
		return "the token is not DPoP-bound"
	}
	return describe(err)
}
