package oidc

import (
	"context"
	"strconv"
)

func (c *Client) send(ctx context.Context, req Request) (map[string]any, error) {
	resp, err := c.deps.Transport.Do(ctx, req)
	if err != nil {
		return nil, newError(CodeNetwork, req.Method+" "+req.URL, err)
	}
	return c.decode(req, resp)
}

// decode reads a JSON answer: an OAuth error is an *Error with its code.
func (c *Client) decode(req Request, resp Response) (map[string]any, error) {
	m, jsonErr := parseJSONObject(resp.Body)
	if resp.Status >= 400 {
		if jsonErr == nil && str(m, "error") != "" {
			return nil, newError(str(m, "error"), str(m, "error_description"), nil)
		}
		if resp.Status >= 500 {
			return nil, newError(CodeBrokerDown, "HTTP "+strconv.Itoa(resp.Status)+" from "+req.URL, nil)
		}
		return nil, newError(CodeInvalidResponse, "HTTP "+strconv.Itoa(resp.Status)+" from "+req.URL, nil)
	}
	if jsonErr != nil {
		return nil, newError(CodeInvalidResponse, "no JSON object from "+req.URL, jsonErr)
	}
	return m, nil
}

func (c *Client) getJSON(ctx context.Context, url string) (map[string]any, error) {
	return c.send(ctx, Request{Method: "GET", URL: url, Header: map[string]string{"Accept": "application/json"}})
}

func (c *Client) postForm(ctx context.Context, url string, form params) (map[string]any, error) {
	return c.send(ctx, formRequest(url, form))
}

func formRequest(url string, form params) Request {
	return Request{
		Method: "POST",
		URL:    url,
		Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
		Body:   form.encode(),
	}
}

// Discovery fetches the broker's discovery document once and checks that it
// belongs to the configured issuer.
func (c *Client) Discovery(ctx context.Context) (*Discovery, error) {
	c.mu.Lock()
	d := c.disc
	c.mu.Unlock()
	if d != nil {
		return d, nil
	}
	m, err := c.getJSON(ctx, c.cfg.Issuer+"/.well-known/openid-configuration")
	if err != nil {
		return nil, err
	}
	d = &Discovery{
		Issuer:                str(m, "issuer"),
		AuthorizationEndpoint: str(m, "authorization_endpoint"),
		TokenEndpoint:         str(m, "token_endpoint"),
		UserinfoEndpoint:      str(m, "userinfo_endpoint"),
		RevocationEndpoint:    str(m, "revocation_endpoint"),
		EndSessionEndpoint:    str(m, "end_session_endpoint"),
		JWKSURI:               str(m, "jwks_uri"),
		IssParameter:          m["authorization_response_iss_parameter_supported"] == true,
		DPoPAlgs:              strs(m, "dpop_signing_alg_values_supported"),
	}
	if d.Issuer != c.cfg.Issuer {
		return nil, newError(CodeInvalidResponse, "discovery issuer "+d.Issuer+" is not "+c.cfg.Issuer, nil)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" || d.JWKSURI == "" {
		return nil, newError(CodeInvalidResponse, "discovery lacks authorization, token or jwks endpoint", nil)
	}
	c.mu.Lock()
	c.disc = d
	c.mu.Unlock()
	return d, nil
}
