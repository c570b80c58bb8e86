package oidc

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// DPoP (RFC 9449): the client proves, on every token request and every
// request that presents an access token, that it holds a private key. The
// broker binds the tokens it issues to that key (cnf.jkt), so a token
// copied out of the browser is useless without the key, and the key cannot
// be copied out: the browser generated it non-extractable.

// dpopAlg is the only proof algorithm the client uses: ECDSA P-256, which
// every browser's WebCrypto has.
const dpopAlg = "ES256"

// Token types of a session.
const (
	tokenTypeBearer = "Bearer"
	tokenTypeDPoP   = "DPoP"
)

// dpopOn reports whether token requests carry proofs: there is a key, the
// configuration does not turn DPoP off, and the broker advertises ES256 in
// dpop_signing_alg_values_supported.
func (c *Client) dpopOn(d *Discovery) bool {
	return c.deps.ProofKey != nil && !c.cfg.DisableDPoP && slices.Contains(d.DPoPAlgs, dpopAlg)
}

// publicJWK returns the proof key's public JWK (kty, crv, x, y only) and
// its RFC 7638 thumbprint.
func (c *Client) publicJWK(ctx context.Context) (map[string]any, string, error) {
	if c.deps.ProofKey == nil {
		return nil, "", newError(CodeDPoPKey, "no DPoP key", nil)
	}
	k, err := c.deps.ProofKey.PublicJWK(ctx)
	if err != nil {
		return nil, "", newError(CodeDPoPKey, "DPoP key", err)
	}
	jwk := map[string]any{"kty": str(k, "kty"), "crv": str(k, "crv"), "x": str(k, "x"), "y": str(k, "y")}
	if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || jwk["x"] == "" || jwk["y"] == "" {
		return nil, "", newError(CodeDPoPKey, "the DPoP key is not a P-256 public key", nil)
	}
	return jwk, thumbprint(jwk), nil
}

// thumbprint is the JWK SHA-256 thumbprint (RFC 7638) of an EC public key:
// the required members in lexicographic order, no spaces (appendJSON sorts
// keys).
func thumbprint(jwk map[string]any) string {
	sum := sum256(appendJSON(nil, jwk))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// htu is the DPoP htu of a request URL: without query and fragment.
func htu(url string) string {
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		return url[:i]
	}
	return url
}

// origin is the scheme, host and port of an absolute URL: DPoP nonces are
// per server.
func origin(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.ToLower(scheme + "://" + rest)
}

// Proof returns a DPoP proof for a request: a JWS (typ dpop+jwt, ES256,
// the public key in its header) over a fresh jti, htm, htu and iat, with
// ath the hash of accessToken when one is presented and the server's
// nonce: the given one, or the last one this server sent.
func (c *Client) Proof(ctx context.Context, method, url, accessToken, nonce string) (string, error) {
	jwk, _, err := c.publicJWK(ctx)
	if err != nil {
		return "", err
	}
	if nonce == "" {
		nonce = c.dpopNonce(url)
	} else {
		c.noteNonce(url, nonce)
	}
	jti, err := c.randomString(16)
	if err != nil {
		return "", err
	}
	claims := map[string]any{
		"jti": jti,
		"htm": strings.ToUpper(method),
		"htu": htu(url),
		"iat": c.deps.Clock.Now().Unix(),
	}
	if accessToken != "" {
		sum := sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	header := map[string]any{"typ": "dpop+jwt", "alg": dpopAlg, "jwk": jwk}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(appendJSON(nil, header)) + "." + enc.EncodeToString(appendJSON(nil, claims))
	sig, err := c.deps.ProofKey.Sign(ctx, []byte(input))
	if err != nil {
		return "", newError(CodeDPoPKey, "sign the DPoP proof", err)
	}
	if len(sig) != 64 {
		return "", newError(CodeDPoPKey, "the DPoP key made a "+strconv.Itoa(len(sig))+"-byte signature, not ES256's 64", nil)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

func (c *Client) dpopNonce(url string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonces[origin(url)]
}

// noteNonce remembers the DPoP-Nonce a server sent for its next proofs.
func (c *Client) noteNonce(url, nonce string) {
	if nonce == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonces == nil {
		c.nonces = map[string]string{}
	}
	c.nonces[origin(url)] = nonce
}

// NoteNonce remembers a DPoP-Nonce that a server (an API) sent in a
// response to a request to url, for the next proofs to that server.
func (c *Client) NoteNonce(url, nonce string) { c.noteNonce(url, nonce) }

// postToken sends a token request. With dpop it carries a proof, and a
// use_dpop_nonce error with a DPoP-Nonce is retried once with that nonce
// (RFC 9449 section 8).
func (c *Client) postToken(ctx context.Context, d *Discovery, form params, dpop bool) (map[string]any, error) {
	if !dpop {
		return c.postForm(ctx, d.TokenEndpoint, form)
	}
	req := formRequest(d.TokenEndpoint, form)
	for attempt := 0; ; attempt++ {
		proof, err := c.Proof(ctx, req.Method, req.URL, "", "")
		if err != nil {
			return nil, err
		}
		req.Header["DPoP"] = proof
		resp, err := c.deps.Transport.Do(ctx, req)
		if err != nil {
			return nil, newError(CodeNetwork, req.Method+" "+req.URL, err)
		}
		fresh := resp.Header["dpop-nonce"]
		c.noteNonce(req.URL, fresh)
		m, err := c.decode(req, resp)
		if attempt == 0 && fresh != "" && ErrorCode(err) == "use_dpop_nonce" {
			continue
		}
		return m, err
	}
}

// AuthHeaders returns the headers that present the session's access token
// on a request: Authorization ("Bearer <token>" or "DPoP <token>") and, for
// a DPoP-bound token, a fresh proof for method and url in DPoP. It returns
// the access token too (to Renew it when the server refuses it). nonce is
// a DPoP-Nonce the server just sent ("" for the last one it sent).
func (c *Client) AuthHeaders(ctx context.Context, method, url, nonce string) (string, map[string]string, error) {
	at, err := c.AccessToken(ctx, 0)
	if err != nil {
		return "", nil, err
	}
	h, err := c.presentToken(ctx, method, url, at, nonce)
	return at, h, err
}

// presentToken builds the headers presenting at, by the session's token type.
func (c *Client) presentToken(ctx context.Context, method, url, at, nonce string) (map[string]string, error) {
	if c.tokenType() != tokenTypeDPoP {
		return map[string]string{"Authorization": "Bearer " + at}, nil
	}
	proof, err := c.Proof(ctx, method, url, at, nonce)
	if err != nil {
		return nil, err
	}
	return map[string]string{"Authorization": "DPoP " + at, "DPoP": proof}, nil
}

func (c *Client) tokenType() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil || c.session.TokenType == "" {
		return tokenTypeBearer
	}
	return c.session.TokenType
}

// nonceChallenge is the DPoP-Nonce of a resource server's 401 that asks
// for one (WWW-Authenticate: DPoP error="use_dpop_nonce"), or "".
func nonceChallenge(resp Response) string {
	if resp.Status != 401 || !strings.Contains(resp.Header["www-authenticate"], "use_dpop_nonce") {
		return ""
	}
	return resp.Header["dpop-nonce"]
}

// ProofFor is Proof for an application that presents the access token
// itself: the proof's ath is that of accessToken, or of the token
// AccessToken returns now when it is "". It fails with CodeDPoPOff when the
// session's tokens are not DPoP-bound (present them as Bearer tokens).
func (c *Client) ProofFor(ctx context.Context, method, url, accessToken, nonce string) (string, error) {
	if accessToken == "" {
		at, err := c.AccessToken(ctx, 0)
		if err != nil {
			return "", err
		}
		accessToken = at
	}
	if c.tokenType() != tokenTypeDPoP {
		return "", newError(CodeDPoPOff, "the session's tokens are Bearer tokens, not DPoP-bound", nil)
	}
	return c.Proof(ctx, method, url, accessToken, nonce)
}
