package oidc

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"
)

// allowedAlgs are the signature algorithms the client accepts for ID tokens.
// "none" and HMAC algorithms are never accepted.
var allowedAlgs = []string{"RS256", "ES256", "PS256", "RS384", "ES384", "RS512", "PS384", "PS512"}

type jws struct {
	header  map[string]any
	claims  map[string]any
	signed  []byte // header.payload
	sig     []byte
	rawBody string
}

func parseJWS(raw string) (*jws, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("bad header encoding")
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("bad payload encoding")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("bad signature encoding")
	}
	h, err := parseJSONObject(hdr)
	if err != nil {
		return nil, errors.New("bad header JSON")
	}
	c, err := parseJSONObject(body)
	if err != nil {
		return nil, errors.New("bad payload JSON")
	}
	return &jws{header: h, claims: c, signed: []byte(parts[0] + "." + parts[1]), sig: sig, rawBody: parts[1]}, nil
}

// idTokenCheck is what an ID token must match.
type idTokenCheck struct {
	nonce       string // expected nonce; "" means none expected (refresh)
	accessToken string // checked against at_hash when present
	subject     string // on refresh: must equal the session's subject
}

// verifyIDToken checks the ID token's signature against the JWKS and its
// claims, and returns the claims.
func (c *Client) verifyIDToken(ctx context.Context, raw string, want idTokenCheck) (map[string]any, error) {
	tok, err := parseJWS(raw)
	if err != nil {
		return nil, newError(CodeInvalidIDToken, "", err)
	}
	alg := str(tok.header, "alg")
	if !slices.Contains(allowedAlgs, alg) {
		return nil, newError(CodeInvalidIDToken, "algorithm not allowed: "+alg, nil)
	}
	key, err := c.signingKey(ctx, str(tok.header, "kid"), alg)
	if err != nil {
		return nil, err
	}
	if err := c.deps.Verifier.Verify(ctx, alg, key, tok.signed, tok.sig); err != nil {
		return nil, newError(CodeInvalidIDToken, "signature", err)
	}
	if err := c.checkClaims(tok.claims, alg, want); err != nil {
		return nil, newError(CodeInvalidIDToken, err.Error(), nil)
	}
	return tok.claims, nil
}

func (c *Client) checkClaims(claims map[string]any, alg string, want idTokenCheck) error {
	now := c.deps.Clock.Now()
	skew := c.cfg.ClockSkew
	if iss := str(claims, "iss"); iss != c.cfg.Issuer {
		return errors.New("issuer mismatch: " + iss)
	}
	aud := strs(claims, "aud")
	if !slices.Contains(aud, c.cfg.ClientID) {
		return errors.New("audience does not contain the client")
	}
	azp, hasAZP := claims["azp"].(string)
	if len(aud) > 1 && !hasAZP {
		return errors.New("azp required with several audiences")
	}
	if hasAZP && azp != c.cfg.ClientID {
		return errors.New("azp is not the client")
	}
	exp, ok := num(claims, "exp")
	if !ok {
		return errors.New("exp missing")
	}
	if !now.Before(unixTime(exp).Add(skew)) {
		return errors.New("expired")
	}
	iat, ok := num(claims, "iat")
	if !ok {
		return errors.New("iat missing")
	}
	if unixTime(iat).After(now.Add(skew)) {
		return errors.New("issued in the future")
	}
	sub := str(claims, "sub")
	if sub == "" {
		return errors.New("sub missing")
	}
	if want.subject != "" && sub != want.subject {
		return errors.New("subject changed")
	}
	nonce := str(claims, "nonce")
	if want.nonce != "" && !equalConstantTime(nonce, want.nonce) {
		return errors.New("nonce mismatch")
	}
	if atHash := str(claims, "at_hash"); atHash != "" && want.accessToken != "" && strings.HasSuffix(alg, "256") {
		sum := sum256([]byte(want.accessToken))
		if base64.RawURLEncoding.EncodeToString(sum[:16]) != atHash {
			return errors.New("at_hash mismatch")
		}
	}
	return nil
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// signingKey finds the JWKS key for kid, fetching the JWKS again once when the
// kid is unknown (the broker rotated its keys).
func (c *Client) signingKey(ctx context.Context, kid, alg string) (map[string]any, error) {
	c.mu.Lock()
	keys, fetchedAt := c.jwks, c.jwksFetched
	c.mu.Unlock()
	if keys != nil {
		if k := pickKey(keys, kid, alg); k != nil {
			return k, nil
		}
		// Refetch at most every 10 seconds so tokens with unknown kids
		// cannot make us hammer the broker.
		if c.deps.Clock.Now().Sub(fetchedAt) < 10*time.Second {
			return nil, newError(CodeInvalidIDToken, "no JWKS key for kid "+kid, nil)
		}
	}
	keys, err := c.fetchJWKS(ctx)
	if err != nil {
		return nil, err
	}
	if k := pickKey(keys, kid, alg); k != nil {
		return k, nil
	}
	return nil, newError(CodeInvalidIDToken, "no JWKS key for kid "+kid, nil)
}

func pickKey(keys []map[string]any, kid, alg string) map[string]any {
	var match map[string]any
	n := 0
	for _, k := range keys {
		if use := str(k, "use"); use != "" && use != "sig" {
			continue
		}
		if a := str(k, "alg"); a != "" && a != alg {
			continue
		}
		if kid != "" && str(k, "kid") != kid {
			continue
		}
		if !ktyFits(str(k, "kty"), alg) {
			continue
		}
		match = k
		n++
	}
	if kid == "" && n != 1 {
		return nil // without a kid only an unambiguous key will do
	}
	return match
}

func ktyFits(kty, alg string) bool {
	switch alg[:2] {
	case "RS", "PS":
		return kty == "RSA"
	case "ES":
		return kty == "EC"
	}
	return false
}

func (c *Client) fetchJWKS(ctx context.Context) ([]map[string]any, error) {
	d, err := c.Discovery(ctx)
	if err != nil {
		return nil, err
	}
	m, err := c.getJSON(ctx, d.JWKSURI)
	if err != nil {
		return nil, err
	}
	raw, _ := m["keys"].([]any)
	keys := make([]map[string]any, 0, len(raw))
	for _, k := range raw {
		if km, ok := k.(map[string]any); ok {
			keys = append(keys, km)
		}
	}
	c.mu.Lock()
	c.jwks = keys
	c.jwksFetched = c.deps.Clock.Now()
	c.mu.Unlock()
	return keys, nil
}
