package rp

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// maxDocumentBytes bounds discovery and JWKS responses.
const maxDocumentBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted from a JWKS.
const minRSABits = 2048

// verifyKey is one public key from the JWKS and the one algorithm it may be
// used with.
type verifyKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keySet is an immutable snapshot of the issuer's JWKS.
type keySet struct {
	byKID   map[string][]verifyKey
	all     []verifyKey
	fetched time.Time
	expires time.Time
}

// keyCache holds the current keySet and fetches a new one when it expires or
// when a token names a key it lacks. Reads are lock-free; fetches are
// single-flight and at most one per refetchInterval.
type keyCache struct {
	url             string
	client          *http.Client
	logger          *slog.Logger
	now             func() time.Time
	floor, ceiling  time.Duration
	defaultTTL      time.Duration
	refetchInterval time.Duration

	current atomic.Pointer[keySet]

	mu        sync.Mutex
	inflight  *fetchCall
	lastFetch time.Time // start of the last fetch, successful or not
	lastErr   error     // how the last fetch failed, nil if it did not
	fetches   atomic.Int64
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func newKeyCache(url string, cfg *config) *keyCache {
	return &keyCache{
		url:             url,
		client:          cfg.client,
		logger:          cfg.logger,
		now:             cfg.now,
		floor:           cfg.cacheFloor,
		ceiling:         cfg.cacheCeiling,
		defaultTTL:      cfg.cacheTTL,
		refetchInterval: cfg.refetchInterval,
	}
}

// lookup returns the keys a token with this key ID may be signed with: those
// with that kid, or every key when kid is empty. It refreshes an expired set
// and refetches once for an unknown kid, within the rate limit.
func (c *keyCache) lookup(ctx context.Context, kid string) ([]verifyKey, error) {
	set := c.current.Load()
	if set == nil || !c.now().Before(set.expires) {
		// On failure keep using the stale set (run logged why): the issuer
		// being down must not lock out tokens signed by keys we know.
		err := c.refresh(ctx)
		if set = c.current.Load(); set == nil {
			return nil, err
		}
	}
	if kid == "" {
		return set.all, nil
	}
	if keys := set.byKID[kid]; len(keys) > 0 {
		return keys, nil
	}
	if err := c.refresh(ctx); err != nil {
		return nil, fmt.Errorf("key %q not cached: %w", kid, err)
	}
	if set = c.current.Load(); set != nil {
		if keys := set.byKID[kid]; len(keys) > 0 {
			return keys, nil
		}
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// refresh fetches the JWKS unless a fetch started less than refetchInterval
// ago; callers arriving during a fetch wait for it. It returns nil when it was
// rate-limited: the caller then works with the set it has — unless that
// last fetch failed, whose error it then returns.
func (c *keyCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	call := c.inflight
	if call == nil {
		if !c.lastFetch.IsZero() && c.now().Sub(c.lastFetch) < c.refetchInterval {
			err := c.lastErr
			c.mu.Unlock()
			return err
		}
		call = &fetchCall{done: make(chan struct{})}
		c.inflight = call
		c.lastFetch = c.now()
		c.mu.Unlock()
		// The fetch serves every waiter, so it must not die with the
		// first caller's request; the HTTP client's timeout bounds it.
		go c.run(context.WithoutCancel(ctx), call)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for JWKS: %w", ctx.Err())
	}
}

func (c *keyCache) run(ctx context.Context, call *fetchCall) {
	set, err := c.fetch(ctx)
	if err == nil {
		c.current.Store(set)
	} else {
		err = fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
		c.logger.WarnContext(ctx, "rp: JWKS fetch failed", "url", c.url, "error", err)
	}
	c.mu.Lock()
	call.err = err
	c.lastErr = err
	c.inflight = nil
	c.mu.Unlock()
	close(call.done)
}

func (c *keyCache) fetch(ctx context.Context) (*keySet, error) {
	c.fetches.Add(1)
	body, header, err := getDocument(ctx, c.client, c.url)
	if err != nil {
		return nil, err
	}
	set, err := parseKeySet(body, c.logger)
	if err != nil {
		return nil, fmt.Errorf("parse JWKS %s: %w", c.url, err)
	}
	now := c.now()
	ttl := c.defaultTTL
	if maxAge, ok := parseMaxAge(header.Get("Cache-Control")); ok {
		ttl = maxAge
	}
	ttl = min(max(ttl, c.floor), c.ceiling)
	set.fetched = now
	set.expires = now.Add(ttl)
	c.logger.DebugContext(ctx, "rp: fetched JWKS", "url", c.url, "keys", len(set.all), "ttl", ttl)
	return set, nil
}

// getDocument GETs a JSON document and returns its body and headers.
func getDocument(ctx context.Context, client *http.Client, url string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("get %s: status %s", url, resp.Status)
	}
	if len(body) > maxDocumentBytes {
		return nil, nil, fmt.Errorf("get %s: document larger than %d bytes", url, maxDocumentBytes)
	}
	return body, resp.Header, nil
}

// parseKeySet reads a JWKS, keeping the signature keys it can use. A key it
// cannot use (symmetric, too small, unknown type, wrong use, an alg that does
// not fit the key) is skipped, not fatal: one odd key must not hide the rest.
func parseKeySet(body []byte, logger *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	set := &keySet{byKID: make(map[string][]verifyKey, len(doc.Keys))}
	for i, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			logger.Warn("rp: skipping JWKS key", "index", i, "error", err)
			continue
		}
		key, err := usableKey(jwk)
		if err != nil {
			logger.Warn("rp: skipping JWKS key", "index", i, "kid", jwk.KeyID, "error", err)
			continue
		}
		set.all = append(set.all, key)
		set.byKID[key.kid] = append(set.byKID[key.kid], key)
	}
	return set, nil
}

// usableKey decides which one algorithm a JWK may verify: the JWK's own alg
// when it fits the key, else the usual one for the key type. The token's
// header never chooses.
func usableKey(jwk jose.JSONWebKey) (verifyKey, error) {
	if jwk.Use != "" && jwk.Use != "sig" {
		return verifyKey{}, fmt.Errorf("use %q", jwk.Use)
	}
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	var pub any
	var allowed []jose.SignatureAlgorithm
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		pub, allowed = k, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	case *rsa.PrivateKey:
		pub, allowed = &k.PublicKey, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	case *ecdsa.PublicKey:
		pub, allowed = k, ecdsaAlgorithm(k.Curve)
	case *ecdsa.PrivateKey:
		pub, allowed = &k.PublicKey, ecdsaAlgorithm(k.Curve)
	case ed25519.PublicKey:
		pub, allowed = k, []jose.SignatureAlgorithm{jose.EdDSA}
	case ed25519.PrivateKey:
		pub, allowed = k.Public(), []jose.SignatureAlgorithm{jose.EdDSA}
	default:
		return verifyKey{}, fmt.Errorf("key type %T cannot verify signatures", jwk.Key)
	}
	if rk, ok := pub.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return verifyKey{}, fmt.Errorf("RSA key of %d bits is too small", rk.N.BitLen())
	}
	if len(allowed) == 0 {
		return verifyKey{}, fmt.Errorf("unsupported curve")
	}
	if alg == "" {
		alg = allowed[0]
	}
	for _, a := range allowed {
		if a == alg {
			return verifyKey{kid: jwk.KeyID, alg: alg, key: pub}, nil
		}
	}
	return verifyKey{}, fmt.Errorf("alg %q does not fit the key", alg)
}

func ecdsaAlgorithm(curve elliptic.Curve) []jose.SignatureAlgorithm {
	switch curve {
	case elliptic.P256():
		return []jose.SignatureAlgorithm{jose.ES256}
	case elliptic.P384():
		return []jose.SignatureAlgorithm{jose.ES384}
	case elliptic.P521():
		return []jose.SignatureAlgorithm{jose.ES512}
	}
	return nil
}

// parseMaxAge returns the freshness lifetime a Cache-Control header gives:
// max-age, or zero for no-store and no-cache.
func parseMaxAge(cacheControl string) (time.Duration, bool) {
	if cacheControl == "" {
		return 0, false
	}
	var maxAge time.Duration
	found := false
	for directive := range strings.SplitSeq(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return 0, true
		case "max-age":
			secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
			if err != nil || secs < 0 {
				continue
			}
			maxAge, found = time.Duration(min(secs, int64(365*24*3600)))*time.Second, true
		}
	}
	return maxAge, found
}
