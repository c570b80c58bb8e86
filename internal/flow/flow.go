// Package flow drives Bridgekeeper as an OAuth 2.0 client and a user would:
// the authorization request, the login form, the code exchange, refresh,
// revocation and client credentials. The replica and resilience tests and
// cmd/loadgen share it. It speaks plain HTTP and knows the broker only
// through its public endpoints and its login form.
package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Endpoint paths under a broker's base URL.
const (
	PathAuthorize = "/oauth2/auth"
	PathToken     = "/oauth2/token"
	PathRevoke    = "/oauth2/revoke"
	PathJWKS      = "/.well-known/jwks.json"
)

// Client is one OAuth client with one browser (a cookie jar). It is safe
// for concurrent use once built.
type Client struct {
	ClientID     string
	ClientSecret string // empty for a public client
	RedirectURI  string
	Scope        string // default "openid offline_access"
	// Issuer, when the broker's issuer URL differs from the base URLs the
	// client talks to (replicas behind a load balancer), marks the pages
	// under it as the broker's in LoginUpstream.
	Issuer string
	HTTP   *http.Client
}

// New returns a client with its own cookie jar; transport may be nil.
func New(clientID, redirectURI string, transport http.RoundTripper) *Client {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &Client{
		ClientID:    clientID,
		RedirectURI: redirectURI,
		Scope:       "openid offline_access",
		HTTP: &http.Client{
			Jar:       jar,
			Transport: transport,
			Timeout:   30 * time.Second,
			// Redirects are followed by hand, to stop at the redirect URI.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Code is an authorization code with the PKCE verifier that redeems it.
type Code struct {
	Code     string
	Verifier string
}

// Tokens is a token endpoint's answer: the tokens on success, else the
// OAuth error.
type Tokens struct {
	Status       int    `json:"-"`
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// OK says whether the request succeeded.
func (t Tokens) OK() bool { return t.Status == http.StatusOK && t.AccessToken != "" }

func (t Tokens) String() string {
	if t.OK() {
		return "200 ok"
	}
	return fmt.Sprintf("%d %s: %s", t.Status, t.Error, t.Description)
}

// Login starts an authorization request at base, signs in on the login
// form with email and password, and returns the code sent to the
// redirect URI. The session cookie stays in the client's jar.
func (c *Client) Login(ctx context.Context, base, email, password string) (Code, error) {
	code, verifier, state := "", newVerifier(), rand.Text()
	res, body, err := c.follow(ctx, c.authorizeURL(base, verifier, state, ""))
	if err != nil {
		return Code{}, err
	}
	if res == nil {
		return Code{}, errors.New("flow: the broker issued a code without showing the login form")
	}
	action, fields, err := parseForm(body)
	if err != nil {
		return Code{}, fmt.Errorf("flow: login page (%d): %w", res.StatusCode, err)
	}
	action, err = resolve(res.Request.URL, action)
	if err != nil {
		return Code{}, err
	}
	fields.Set("email", email)
	fields.Set("password", password)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(fields.Encode()))
	if err != nil {
		return Code{}, fmt.Errorf("flow: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	code, err = c.redirectChain(req, state)
	if err != nil {
		return Code{}, fmt.Errorf("flow: login as %s: %w", email, err)
	}
	return Code{Code: code, Verifier: verifier}, nil
}

// Authorize asks base for a code with prompt=none, which succeeds on the
// strength of the session cookie an earlier Login left in the jar.
func (c *Client) Authorize(ctx context.Context, base string) (Code, error) {
	verifier, state := newVerifier(), rand.Text()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.authorizeURL(base, verifier, state, "none"), nil)
	if err != nil {
		return Code{}, fmt.Errorf("flow: %w", err)
	}
	code, err := c.redirectChain(req, state)
	if err != nil {
		return Code{}, fmt.Errorf("flow: authorize (prompt=none): %w", err)
	}
	return Code{Code: code, Verifier: verifier}, nil
}

// LoginUpstream logs in through the connector named connector
// (idp_hint): it follows the broker's redirects until one leaves the broker,
// lets upstreamLogin act as the user at the upstream IdP (it returns the
// URL the upstream sends the browser back to), and follows the broker's
// callback to the code.
func (c *Client) LoginUpstream(ctx context.Context, base, connector string, upstreamLogin func(ctx context.Context, upstreamURL string) (string, error)) (Code, error) {
	verifier, state := newVerifier(), rand.Text()
	u := c.authorizeURL(base, verifier, state, "") + "&idp_hint=" + url.QueryEscape(connector)
	brokerHosts := map[string]bool{}
	for _, b := range []string{base, c.Issuer} {
		if b == "" {
			continue
		}
		bu, err := url.Parse(b)
		if err != nil {
			return Code{}, fmt.Errorf("flow: base %q: %w", b, err)
		}
		brokerHosts[bu.Host] = true
	}
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return Code{}, fmt.Errorf("flow: %w", err)
		}
		res, err := c.HTTP.Do(req)
		if err != nil {
			return Code{}, fmt.Errorf("flow: %w", err)
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return Code{}, &StatusError{Status: res.StatusCode, Step: "upstream login start", Body: string(body)}
		}
		if strings.HasPrefix(loc, c.RedirectURI) {
			if back, err := url.Parse(loc); err == nil && back.Query().Get("error") != "" {
				q := back.Query()
				return Code{}, fmt.Errorf("flow: upstream login start: authorization error %s: %s", q.Get("error"), q.Get("error_description"))
			}
			return Code{}, errors.New("flow: the broker answered without asking the upstream (a session cookie in the jar?)")
		}
		next, err := req.URL.Parse(loc)
		if err != nil {
			return Code{}, fmt.Errorf("flow: location %q: %w", loc, err)
		}
		if brokerHosts[next.Host] {
			u = next.String()
			continue
		}
		back, err := upstreamLogin(ctx, next.String())
		if err != nil {
			return Code{}, fmt.Errorf("flow: upstream login: %w", err)
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, back, nil)
		if err != nil {
			return Code{}, fmt.Errorf("flow: %w", err)
		}
		code, err := c.redirectChain(req, state)
		if err != nil {
			return Code{}, fmt.Errorf("flow: upstream callback: %w", err)
		}
		return Code{Code: code, Verifier: verifier}, nil
	}
	return Code{}, errors.New("flow: too many redirects before the upstream")
}

// StatusError is a broker page answered where a redirect was expected.
type StatusError struct {
	Status int
	Step   string
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: the broker answered %d: %.300s", e.Step, e.Status, e.Body)
}

func (c *Client) authorizeURL(base, verifier, state, prompt string) string {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id":             {c.ClientID},
		"response_type":         {"code"},
		"redirect_uri":          {c.RedirectURI},
		"scope":                 {c.scope()},
		"state":                 {state},
		"nonce":                 {rand.Text()},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if prompt != "" {
		q.Set("prompt", prompt)
	}
	return base + PathAuthorize + "?" + q.Encode()
}

func (c *Client) scope() string {
	if c.Scope == "" {
		return "openid offline_access"
	}
	return c.Scope
}

// follow GETs u and follows redirects inside the broker. It returns the
// first page that is not a redirect, or (nil, code) when the chain reaches
// the redirect URI.
func (c *Client) follow(ctx context.Context, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("flow: %w", err)
	}
	for range 10 {
		res, err := c.HTTP.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("flow: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("flow: %s: %w", req.URL.Path, err)
		}
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return res, body, nil
		}
		if strings.HasPrefix(loc, c.RedirectURI) {
			return nil, nil, nil
		}
		next, err := resolve(req.URL, loc)
		if err != nil {
			return nil, nil, err
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, next, nil); err != nil {
			return nil, nil, fmt.Errorf("flow: %w", err)
		}
	}
	return nil, nil, errors.New("flow: too many redirects")
}

// redirectChain sends req and follows redirects until one reaches the
// redirect URI, and returns the code there.
func (c *Client) redirectChain(req *http.Request, state string) (string, error) {
	for range 10 {
		res, err := c.HTTP.Do(req)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		loc := res.Header.Get("Location")
		if res.StatusCode < 300 || res.StatusCode > 399 || loc == "" {
			return "", &StatusError{Status: res.StatusCode, Step: req.Method + " " + req.URL.Path, Body: string(body)}
		}
		if strings.HasPrefix(loc, c.RedirectURI) {
			u, err := url.Parse(loc)
			if err != nil {
				return "", fmt.Errorf("redirect %q: %w", loc, err)
			}
			q := u.Query()
			if e := q.Get("error"); e != "" {
				return "", fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
			}
			if q.Get("state") != state {
				return "", fmt.Errorf("state %q came back as %q", state, q.Get("state"))
			}
			if q.Get("code") == "" {
				return "", fmt.Errorf("redirect without a code: %s", loc)
			}
			return q.Get("code"), nil
		}
		next, err := resolve(req.URL, loc)
		if err != nil {
			return "", err
		}
		if req, err = http.NewRequestWithContext(req.Context(), http.MethodGet, next, nil); err != nil {
			return "", err
		}
	}
	return "", errors.New("too many redirects")
}

// Exchange redeems code at base's token endpoint.
func (c *Client) Exchange(ctx context.Context, base string, code Code) (Tokens, error) {
	return c.token(ctx, base, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code.Code},
		"redirect_uri":  {c.RedirectURI},
		"code_verifier": {code.Verifier},
	})
}

// Refresh redeems a refresh token at base's token endpoint.
func (c *Client) Refresh(ctx context.Context, base, refreshToken string) (Tokens, error) {
	return c.token(ctx, base, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// ClientCredentials asks base for a token for the client itself.
func (c *Client) ClientCredentials(ctx context.Context, base, scope string) (Tokens, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return c.token(ctx, base, form)
}

// Revoke revokes a token at base (RFC 7009) and returns the status code.
func (c *Client) Revoke(ctx context.Context, base, token string) (int, error) {
	res, _, err := c.post(ctx, base+PathRevoke, url.Values{"token": {token}})
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

func (c *Client) token(ctx context.Context, base string, form url.Values) (Tokens, error) {
	res, body, err := c.post(ctx, base+PathToken, form)
	if err != nil {
		return Tokens{}, err
	}
	t := Tokens{Status: res.StatusCode}
	if err := json.Unmarshal(body, &t); err != nil {
		return t, fmt.Errorf("flow: token endpoint answered %d with no JSON: %.200s", res.StatusCode, body)
	}
	t.Status = res.StatusCode
	return t, nil
}

func (c *Client) post(ctx context.Context, u string, form url.Values) (*http.Response, []byte, error) {
	if c.ClientSecret == "" {
		form.Set("client_id", c.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, fmt.Errorf("flow: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("flow: POST %s: %w", req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("flow: POST %s: %w", req.URL.Path, err)
	}
	return res, body, nil
}

func newVerifier() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b[^>]*\bmethod="post"[^>]*>(.*?)</form>`)
	actRe   = regexp.MustCompile(`(?is)<form\b[^>]*\baction="([^"]*)"`)
	inputRe = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	nameRe  = regexp.MustCompile(`(?is)\bname="([^"]*)"`)
	valueRe = regexp.MustCompile(`(?is)\bvalue="([^"]*)"`)
)

// parseForm finds the page's POST form: its action and its inputs' values.
func parseForm(page []byte) (string, url.Values, error) {
	form := formRe.Find(page)
	if form == nil {
		return "", nil, fmt.Errorf("no <form method=\"post\"> in the page: %.300s", page)
	}
	action := ""
	if m := actRe.FindSubmatch(form); m != nil {
		action = html.UnescapeString(string(m[1]))
	}
	fields := url.Values{}
	for _, in := range inputRe.FindAll(form, -1) {
		name := nameRe.FindSubmatch(in)
		if name == nil {
			continue
		}
		value := ""
		if v := valueRe.FindSubmatch(in); v != nil {
			value = html.UnescapeString(string(v[1]))
		}
		fields.Set(html.UnescapeString(string(name[1])), value)
	}
	return action, fields, nil
}

func resolve(base *url.URL, ref string) (string, error) {
	u, err := base.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("flow: location %q: %w", ref, err)
	}
	return u.String(), nil
}
