package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// discoveryTTL is how long a discovery document is trusted before it is
	// fetched again (a failed refetch keeps the old one).
	discoveryTTL = 24 * time.Hour
	// jwksTTL is how long fetched keys are trusted without a refetch, so
	// keys the upstream withdrew stop verifying.
	jwksTTL = 24 * time.Hour
	// kidRefetchInterval limits JWKS refetches caused by unknown key ids,
	// so tokens with made-up kids cannot make us hammer the upstream.
	kidRefetchInterval = 5 * time.Second
	// maxBody bounds every upstream response.
	maxBody = 1 << 20
)

// discovery is the part of the upstream's discovery document we use.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported"`
	// IssParameter says the upstream puts iss in its authorization
	// responses (RFC 9207).
	IssParameter bool `json:"authorization_response_iss_parameter_supported"`
}

// provider caches the upstream's discovery document and keys.
type provider struct {
	issuer string
	http   *http.Client
	now    func() time.Time
	logger *slog.Logger

	fetchMu sync.Mutex // one fetch at a time; readers use mu
	mu      sync.Mutex
	doc     *discovery
	docAt   time.Time
	keys    *jose.JSONWebKeySet
	keysAt  time.Time
	// kidRefetchAt is when an unknown kid last caused a JWKS refetch.
	kidRefetchAt       time.Time
	kidRefetchInterval time.Duration
}

// discovery returns the cached document, fetching it when missing or stale.
func (p *provider) discovery(ctx context.Context) (*discovery, error) {
	p.mu.Lock()
	doc, at := p.doc, p.docAt
	p.mu.Unlock()
	if doc != nil && p.now().Sub(at) < discoveryTTL {
		return doc, nil
	}
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	p.mu.Lock()
	doc, at = p.doc, p.docAt
	p.mu.Unlock()
	if doc != nil && p.now().Sub(at) < discoveryTTL {
		return doc, nil
	}
	fresh, err := p.fetchDiscovery(ctx)
	if err != nil {
		if doc != nil {
			p.logger.Warn("oidc: discovery refresh failed, keeping the cached document", "issuer", p.issuer, "err", err)
			return doc, nil
		}
		return nil, err
	}
	p.mu.Lock()
	p.doc, p.docAt = fresh, p.now()
	p.mu.Unlock()
	return fresh, nil
}

func (p *provider) fetchDiscovery(ctx context.Context) (*discovery, error) {
	target := strings.TrimSuffix(p.issuer, "/") + "/.well-known/openid-configuration"
	var doc discovery
	if err := p.getJSON(ctx, target, &doc); err != nil {
		return nil, fmt.Errorf("fetch discovery document: %w", err)
	}
	if doc.Issuer != p.issuer {
		return nil, fmt.Errorf("discovery document names issuer %q, configured %q", doc.Issuer, p.issuer)
	}
	for name, v := range map[string]string{
		"authorization_endpoint": doc.AuthorizationEndpoint,
		"token_endpoint":         doc.TokenEndpoint,
		"jwks_uri":               doc.JWKSURI,
	} {
		if u, err := url.Parse(v); v == "" || err != nil || !u.IsAbs() {
			return nil, fmt.Errorf("discovery document has no usable %s", name)
		}
	}
	return &doc, nil
}

// verificationKeys returns the published keys that may have signed a token
// with this kid and algorithm. The JWKS is cached for jwksTTL; an unknown kid
// triggers one refetch (at most one per kidRefetchInterval), so upstream key
// rotation needs no restart.
func (p *provider) verificationKeys(ctx context.Context, doc *discovery, kid string, alg string) ([]jose.JSONWebKey, error) {
	p.mu.Lock()
	keys, at := p.keys, p.keysAt
	p.mu.Unlock()
	if keys != nil && p.now().Sub(at) < jwksTTL {
		if found := matchKeys(keys, kid, alg); len(found) > 0 {
			return found, nil
		}
	}
	p.fetchMu.Lock()
	defer p.fetchMu.Unlock()
	p.mu.Lock()
	keys, at = p.keys, p.keysAt
	refetchedAt := p.kidRefetchAt
	p.mu.Unlock()
	fresh := keys != nil && p.now().Sub(at) < jwksTTL
	if fresh {
		if found := matchKeys(keys, kid, alg); len(found) > 0 {
			return found, nil // another call refetched meanwhile
		}
		if p.now().Sub(refetchedAt) < p.kidRefetchInterval {
			return nil, fmt.Errorf("no published key with kid %q", kid)
		}
	}
	var set jose.JSONWebKeySet
	if err := p.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		if keys != nil {
			p.logger.Warn("oidc: JWKS refresh failed, keeping the cached keys", "issuer", p.issuer, "err", err)
			if found := matchKeys(keys, kid, alg); len(found) > 0 {
				return found, nil
			}
		}
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	p.mu.Lock()
	p.keys, p.keysAt = &set, p.now()
	if fresh {
		p.kidRefetchAt = p.now()
	}
	p.mu.Unlock()
	if found := matchKeys(&set, kid, alg); len(found) > 0 {
		return found, nil
	}
	return nil, fmt.Errorf("no published key with kid %q", kid)
}

func matchKeys(set *jose.JSONWebKeySet, kid, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range set.Keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if !k.IsPublic() {
			continue
		}
		out = append(out, k)
	}
	return out
}

func (p *provider) getJSON(ctx context.Context, target string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	return doJSON(p.http, req, v)
}

// httpError is an upstream answer that was not 2xx. Code and Description
// are the OAuth error fields when the body had them.
type httpError struct {
	Status      int
	Code        string
	Description string
}

func (e *httpError) Error() string {
	if e.Code != "" {
		if e.Description != "" {
			return fmt.Sprintf("upstream answered %d %s: %s", e.Status, e.Code, e.Description)
		}
		return fmt.Sprintf("upstream answered %d %s", e.Status, e.Code)
	}
	return fmt.Sprintf("upstream answered HTTP %d", e.Status)
}

// oauthRefusal reports whether err is an OAuth error answer (4xx with an
// error code) other than invalid_client, i.e. the upstream refusing the
// grant rather than failing or rejecting our credentials.
func oauthRefusal(err error) (*httpError, bool) {
	var he *httpError
	if !errors.As(err, &he) {
		return nil, false
	}
	refused := he.Status >= 400 && he.Status < 500 && he.Code != "" && he.Code != "invalid_client"
	return he, refused
}

// doJSON sends req and decodes a 2xx JSON answer into v.
func doJSON(c *http.Client, req *http.Request, v any) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &httpError{Status: resp.StatusCode}
		var oe struct {
			Error            string `json:"error"`
			ErrorDescription string `json:"error_description"`
		}
		if json.Unmarshal(body, &oe) == nil {
			he.Code, he.Description = truncate(oe.Error, 64), truncate(oe.ErrorDescription, 256)
		}
		return he
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return fmt.Errorf("answer is %s, not JSON", mt)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
