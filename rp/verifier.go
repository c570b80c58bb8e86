package rp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// A Verifier validates the JWTs of one issuer. It is safe for concurrent use.
type Verifier struct {
	issuer      string
	audience    string
	anyAudience bool
	types       []string
	leeway      time.Duration
	now         func() time.Time
	realm       string
	logger      *slog.Logger
	keys        *keyCache
	headers     headerCache
	dpop        *dpopVerifier
}

// NewVerifier reads issuer's discovery document
// ({issuer}/.well-known/openid-configuration), checks that it names the same
// issuer, and fetches the JWKS it points to. It needs WithAudience or
// WithAnyAudience.
func NewVerifier(ctx context.Context, issuer string, opts ...Option) (*Verifier, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if issuer == "" {
		return nil, errors.New("rp: issuer is empty")
	}
	if cfg.audience == "" && !cfg.anyAudience {
		return nil, errors.New("rp: no audience: use WithAudience, or WithAnyAudience to accept tokens for any API")
	}
	d, err := newDPoPVerifier(&cfg)
	if err != nil {
		return nil, err
	}
	if cfg.cacheFloor > cfg.cacheCeiling {
		return nil, fmt.Errorf("rp: cache floor %v above ceiling %v", cfg.cacheFloor, cfg.cacheCeiling)
	}
	jwksURL := cfg.jwksURL
	if jwksURL == "" {
		var err error
		jwksURL, err = discoverJWKS(ctx, &cfg, issuer)
		if err != nil {
			return nil, fmt.Errorf("rp: discovery: %w", err)
		}
	}
	v := &Verifier{
		issuer:      issuer,
		audience:    cfg.audience,
		anyAudience: cfg.anyAudience,
		types:       cfg.types,
		leeway:      cfg.leeway,
		now:         cfg.now,
		realm:       cfg.realm,
		logger:      cfg.logger,
		keys:        newKeyCache(jwksURL, &cfg),
		dpop:        d,
	}
	if err := v.keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("rp: %w", err)
	}
	return v, nil
}

func discoverJWKS(ctx context.Context, cfg *config, issuer string) (string, error) {
	url := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, _, err := getDocument(ctx, cfg.client, url)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("decode %s: %w", url, err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("%s names issuer %q, want %q", url, doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("%s has no jwks_uri", url)
	}
	return doc.JWKSURI, nil
}

// Issuer returns the issuer the verifier trusts.
func (v *Verifier) Issuer() string { return v.issuer }

// Verify checks raw — a compact JWS presented as a bearer token — and
// returns its claims. Every refusal matches ErrInvalidToken, except
// ErrKeysUnavailable when the key it names could not be fetched. A
// DPoP-bound token (cnf.jkt) is refused with ErrTokenBound: it is good only
// with its proof (VerifyDPoP); and so is, with ErrNotBound, an unbound one
// that WithDPoPRequired or WithDPoPRequiredFor says must be bound.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims, err := v.verifyToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := v.dpop.checkBearer(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// verifyToken checks raw, bound or not.
func (v *Verifier) verifyToken(ctx context.Context, raw string) (*Claims, error) {
	jws, err := splitCompact(raw)
	if err != nil {
		return nil, err
	}
	header, cached := v.headers.get(jws.headSeg)
	if !cached {
		if header, err = decodeHeader(jws.headSeg); err != nil {
			return nil, err
		}
	}
	if err := v.checkType(header.Typ); err != nil {
		return nil, err
	}
	keys, err := v.keys.lookup(ctx, header.Kid)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(jws.sig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	matched, verified := false, false
	for _, k := range keys {
		if k.alg != header.Alg {
			continue
		}
		matched = true
		if verifySignature(k, jws.input, sig) == nil {
			verified = true
			break
		}
	}
	switch {
	case !matched:
		return nil, fmt.Errorf("%w: %s with key %q", ErrAlgorithm, header.Alg, header.Kid)
	case !verified:
		return nil, ErrSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	claims, err := parseClaims(payload)
	if err != nil {
		return nil, err
	}
	if err := v.checkClaims(claims); err != nil {
		return nil, err
	}
	if !cached {
		v.headers.put(jws.headSeg, header)
	}
	return claims, nil
}

func (v *Verifier) checkType(typ string) error {
	if v.types == nil {
		return nil
	}
	typ = normalizeType(typ)
	for _, t := range v.types {
		if typ == t {
			return nil
		}
	}
	if typ == "" {
		return fmt.Errorf("%w: no typ header", ErrTokenType)
	}
	return fmt.Errorf("%w: %q", ErrTokenType, typ)
}

func (v *Verifier) checkClaims(c *Claims) error {
	if c.Issuer != v.issuer {
		return fmt.Errorf("%w: %q", ErrIssuer, c.Issuer)
	}
	if !v.anyAudience && !c.HasAudience(v.audience) {
		return fmt.Errorf("%w: %q", ErrAudience, c.Audience)
	}
	now := v.now()
	if c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: no exp claim", ErrMalformed)
	}
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return ErrExpired
	}
	if !c.NotBefore.IsZero() && now.Add(v.leeway).Before(c.NotBefore) {
		return ErrNotYetValid
	}
	if !c.IssuedAt.IsZero() && now.Add(v.leeway).Before(c.IssuedAt) {
		return ErrIssuedInFuture
	}
	return nil
}
