// Package oidc is the generic OpenID Connect connector, with presets for
// Okta and Google. It runs the authorization code flow against the upstream
// with PKCE (S256), state and nonce, verifies the upstream's ID token with
// go-jose against the upstream's JWKS, falls back to userinfo for missing
// claims, and re-checks the user on Refresh with the upstream refresh token.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/connectors/upstreamtime"
)

// Connector logs users in at an OpenID Connect provider.
type Connector struct {
	cfg      settings
	http     *http.Client
	logger   *slog.Logger
	provider *provider
	now      func() time.Time
}

var (
	_ connectors.Connector        = (*Connector)(nil)
	_ connectors.RefreshConnector = (*Connector)(nil)
)

// Open builds a connector from its JSON configuration. It is a
// connectors.OpenFunc. Nothing is fetched until the first login, so a
// broker starts even while the upstream is unreachable.
func Open(ctx context.Context, config []byte, logger *slog.Logger) (connectors.Connector, error) {
	cfg, err := ParseConfig(config)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, logger)
}

// New builds a connector from a decoded configuration.
func New(_ context.Context, cfg Config, logger *slog.Logger) (*Connector, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("oidc: config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Timed, so that the broker can tell the upstream's time from ours.
	transport := upstreamtime.Transport(http.DefaultTransport.(*http.Transport).Clone())
	client := &http.Client{Timeout: s.timeout, Transport: transport}
	c := &Connector{cfg: s, http: client, logger: logger, now: time.Now}
	c.provider = &provider{
		issuer:             s.issuer,
		http:               client,
		now:                func() time.Time { return c.now() },
		logger:             logger,
		kidRefetchInterval: kidRefetchInterval,
	}
	return c, nil
}

// Issuer is the upstream issuer the connector trusts.
func (c *Connector) Issuer() string { return c.cfg.issuer }

// loginState is what the broker keeps for us between LoginURL and
// HandleCallback.
type loginState struct {
	Nonce    string `json:"n"`
	Verifier string `json:"v,omitempty"`
	Groups   bool   `json:"g,omitempty"`
	// NotBefore, when set, is the oldest upstream sign-in (Unix seconds)
	// the login accepts: the LoginURL time for ForceLogin, that minus
	// MaxAge for a max_age. The ID token's auth_time must say so.
	NotBefore int64 `json:"nb,omitempty"`
}

// CanReauthenticate implements connectors.ReauthConnector: the connector
// sends prompt=login and max_age upstream (max_age=0 for Google, which
// documents max_age but not prompt=login) and checks the ID token's
// auth_time against them.
func (c *Connector) CanReauthenticate() bool { return true }

// connectorData is kept with the identity for Refresh.
type connectorData struct {
	RefreshToken string `json:"refresh_token,omitempty"`
}

// LoginURL builds the upstream authorization URL.
func (c *Connector) LoginURL(ctx context.Context, req connectors.LoginRequest) (connectors.LoginResponse, error) {
	if req.State == "" || req.CallbackURL == "" {
		return connectors.LoginResponse{}, errors.New("oidc: LoginURL needs a state and a callback URL")
	}
	doc, err := c.provider.discovery(ctx)
	if err != nil {
		return connectors.LoginResponse{}, fmt.Errorf("oidc: %w", err)
	}
	auth, err := url.Parse(doc.AuthorizationEndpoint)
	if err != nil {
		return connectors.LoginResponse{}, fmt.Errorf("oidc: authorization endpoint: %w", err)
	}
	st := loginState{Nonce: randomString(32), Groups: req.Scopes.Groups}
	q := auth.Query()
	q.Set("response_type", "code")
	q.Set("client_id", c.cfg.ClientID)
	q.Set("redirect_uri", req.CallbackURL)
	q.Set("scope", strings.Join(c.scopes(req.Scopes), " "))
	q.Set("state", req.State)
	q.Set("nonce", st.Nonce)
	if !c.cfg.DisablePKCE {
		st.Verifier = randomString(32)
		sum := sha256.Sum256([]byte(st.Verifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		q.Set("code_challenge_method", "S256")
	}
	if req.LoginHint != "" {
		q.Set("login_hint", req.LoginHint)
	}
	if req.Fresh() {
		now := c.now()
		notBefore := now
		if !req.ForceLogin {
			notBefore = now.Add(-*req.MaxAge)
		}
		// At least 1: zero means no freshness asked.
		st.NotBefore = max(notBefore.Unix(), 1)
		maxAge := int64(0)
		if !req.ForceLogin {
			maxAge = int64(*req.MaxAge / time.Second)
		}
		q.Set("max_age", strconv.FormatInt(maxAge, 10))
		if req.ForceLogin && c.cfg.Preset != PresetGoogle {
			q.Set("prompt", "login")
		}
	}
	if c.cfg.Preset == PresetGoogle {
		if req.Scopes.OfflineAccess {
			// Google hands out refresh tokens for access_type=offline, and
			// only on consent.
			q.Set("access_type", "offline")
			q.Set("prompt", "consent")
		}
		if c.cfg.HostedDomain != "" {
			q.Set("hd", c.cfg.HostedDomain) // a hint only; the ID token is checked
		}
	}
	auth.RawQuery = q.Encode()
	state, err := json.Marshal(st)
	if err != nil {
		return connectors.LoginResponse{}, fmt.Errorf("oidc: encode login state: %w", err)
	}
	return connectors.LoginResponse{URL: auth.String(), ConnectorState: state}, nil
}

func (c *Connector) scopes(req connectors.Scopes) []string {
	scopes := append([]string(nil), c.cfg.Scopes...)
	add := func(s string) {
		for _, have := range scopes {
			if have == s {
				return
			}
		}
		scopes = append(scopes, s)
	}
	if req.OfflineAccess && c.cfg.Preset != PresetGoogle {
		add("offline_access")
	}
	if req.Groups && c.cfg.GroupsScope != "" {
		add(c.cfg.GroupsScope)
	}
	return scopes
}

// tokenResponse is the upstream token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// HandleCallback finishes the login: it checks the callback, redeems the
// code, verifies the ID token and builds the identity.
func (c *Connector) HandleCallback(ctx context.Context, req connectors.CallbackRequest) (connectors.Identity, error) {
	params := req.Query
	if len(req.Form) > 0 {
		params = req.Form
	}
	if e := params.Get("error"); e != "" {
		desc := truncate(params.Get("error_description"), 256)
		if desc != "" {
			return connectors.Identity{}, fmt.Errorf("oidc: %w: %s: %s", connectors.ErrUpstreamDenied, truncate(e, 64), desc)
		}
		return connectors.Identity{}, fmt.Errorf("oidc: %w: %s", connectors.ErrUpstreamDenied, truncate(e, 64))
	}
	var st loginState
	if err := json.Unmarshal(req.ConnectorState, &st); err != nil || st.Nonce == "" {
		return connectors.Identity{}, fmt.Errorf("oidc: %w: the login state is missing or unreadable", connectors.ErrInvalidCallback)
	}
	code := params.Get("code")
	if code == "" {
		return connectors.Identity{}, fmt.Errorf("oidc: %w: the callback has no code", connectors.ErrInvalidCallback)
	}
	if iss := params.Get("iss"); iss != "" && iss != c.cfg.issuer {
		// RFC 9207: the answer came from another provider (mix-up attack).
		return connectors.Identity{}, fmt.Errorf("oidc: %w: the callback's iss %q is not the configured issuer", connectors.ErrInvalidCallback, iss)
	}
	doc, err := c.provider.discovery(ctx)
	if err != nil {
		return connectors.Identity{}, fmt.Errorf("oidc: %w", err)
	}
	if doc.IssParameter && params.Get("iss") == "" {
		// RFC 9207 section 2.4: a provider that says it sends iss must.
		return connectors.Identity{}, fmt.Errorf("oidc: %w: the upstream says it sends iss (RFC 9207) but the callback has none", connectors.ErrInvalidCallback)
	}
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {req.CallbackURL},
	}
	if st.Verifier != "" {
		form.Set("code_verifier", st.Verifier)
	}
	tok, err := c.token(ctx, doc, form)
	if err != nil {
		if he, refused := oauthRefusal(err); refused {
			return connectors.Identity{}, fmt.Errorf("oidc: %w: the token endpoint refused the code: %s", connectors.ErrUpstreamDenied, he.Error())
		}
		return connectors.Identity{}, fmt.Errorf("oidc: redeem code: %w", err)
	}
	if tok.IDToken == "" {
		return connectors.Identity{}, fmt.Errorf("oidc: %w: the token response has no ID token", connectors.ErrInvalidCallback)
	}
	claims, err := c.verifyIDToken(ctx, doc, tok.IDToken, st.Nonce)
	if err != nil {
		return connectors.Identity{}, err
	}
	authTime, err := c.checkAuthTime(claims, st.NotBefore)
	if err != nil {
		return connectors.Identity{}, err
	}
	ident, err := c.identity(ctx, doc, claims, tok.AccessToken, st.Groups)
	if err != nil {
		return connectors.Identity{}, err
	}
	ident.AuthTime = authTime
	ident.AMR = c.upstreamAMR(ctx, claims)
	if tok.RefreshToken != "" {
		data, err := json.Marshal(connectorData{RefreshToken: tok.RefreshToken})
		if err != nil {
			return connectors.Identity{}, fmt.Errorf("oidc: encode connector data: %w", err)
		}
		ident.ConnectorData = data
	}
	return ident, nil
}

// Refresh re-checks the user upstream with the refresh token kept at login.
// An identity without one (the client did not ask for offline access) is
// returned unchanged. An upstream that refuses the refresh token, or answers
// for another subject, revokes the identity.
func (c *Connector) Refresh(ctx context.Context, scopes connectors.Scopes, ident connectors.Identity) (connectors.Identity, error) {
	if len(ident.ConnectorData) == 0 {
		return ident, nil
	}
	var data connectorData
	if err := json.Unmarshal(ident.ConnectorData, &data); err != nil {
		return connectors.Identity{}, fmt.Errorf("oidc: connector data unreadable: %w", err)
	}
	if data.RefreshToken == "" {
		return ident, nil
	}
	doc, err := c.provider.discovery(ctx)
	if err != nil {
		return connectors.Identity{}, fmt.Errorf("oidc: %w", err)
	}
	tok, err := c.token(ctx, doc, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {data.RefreshToken},
	})
	if err != nil {
		if he, refused := oauthRefusal(err); refused {
			return connectors.Identity{}, fmt.Errorf("oidc: %w: the upstream refused the refresh token: %s", connectors.ErrIdentityRevoked, he.Error())
		}
		return connectors.Identity{}, fmt.Errorf("oidc: refresh: %w", err)
	}
	var claims map[string]any
	switch {
	case tok.IDToken != "":
		claims, err = c.verifyIDToken(ctx, doc, tok.IDToken, "")
		if err != nil {
			return connectors.Identity{}, err
		}
		if sub, _ := claims["sub"].(string); sub != ident.Subject {
			return connectors.Identity{}, fmt.Errorf("oidc: %w: the refreshed ID token names another subject", connectors.ErrIdentityRevoked)
		}
	case doc.UserinfoEndpoint != "" && c.cfg.Userinfo != UserinfoNever:
		claims = map[string]any{"sub": ident.Subject}
		if err := c.mergeUserinfo(ctx, doc, claims, tok.AccessToken); err != nil {
			var he *httpError
			if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
				return connectors.Identity{}, fmt.Errorf("oidc: %w: userinfo refused the new access token", connectors.ErrIdentityRevoked)
			}
			return connectors.Identity{}, err
		}
	default:
		// Nothing to re-read: the upstream vouched for the user by
		// accepting the refresh token.
		return c.keepRefreshToken(ident, tok.RefreshToken)
	}
	fresh, err := c.identity(ctx, doc, claims, tok.AccessToken, scopes.Groups)
	if errors.Is(err, connectors.ErrPolicy) {
		// The user no longer meets the policy (moved out of the hosted
		// domain, say): that ends the broker's grant too.
		return connectors.Identity{}, fmt.Errorf("%w: %w", connectors.ErrIdentityRevoked, err)
	}
	if err != nil {
		return connectors.Identity{}, err
	}
	fresh.ConnectorData = ident.ConnectorData
	return c.keepRefreshToken(fresh, tok.RefreshToken)
}

// keepRefreshToken stores a rotated refresh token in the connector data.
func (c *Connector) keepRefreshToken(ident connectors.Identity, rotated string) (connectors.Identity, error) {
	if rotated == "" {
		return ident, nil
	}
	data, err := json.Marshal(connectorData{RefreshToken: rotated})
	if err != nil {
		return connectors.Identity{}, fmt.Errorf("oidc: encode connector data: %w", err)
	}
	ident.ConnectorData = data
	return ident, nil
}

// token calls the token endpoint with client authentication.
func (c *Connector) token(ctx context.Context, doc *discovery, form url.Values) (*tokenResponse, error) {
	usePost := len(doc.TokenAuthMethods) > 0 &&
		!slices.Contains(doc.TokenAuthMethods, "client_secret_basic") && slices.Contains(doc.TokenAuthMethods, "client_secret_post")
	if usePost {
		form.Set("client_id", c.cfg.ClientID)
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, doc.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !usePost {
		// RFC 6749 §2.3.1: form-encode both parts before Basic.
		req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	}
	var tok tokenResponse
	if err := doJSON(c.http, req, &tok); err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, errors.New("token response has no access_token")
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") {
		return nil, fmt.Errorf("token type %q is not Bearer", tok.TokenType)
	}
	return &tok, nil
}

// verifyIDToken checks an ID token's signature against the upstream JWKS
// and its iss, aud, azp, exp, iat and (when expected) nonce claims. It
// returns all claims.
func (c *Connector) verifyIDToken(ctx context.Context, doc *discovery, raw, nonce string) (map[string]any, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("oidc: %w: ID token: "+format, append([]any{connectors.ErrInvalidCallback}, args...)...)
	}
	tok, err := jwt.ParseSigned(raw, c.cfg.algs)
	if err != nil {
		return nil, invalid("%v", err)
	}
	if len(tok.Headers) != 1 {
		return nil, invalid("want exactly one signature")
	}
	hdr := tok.Headers[0]
	keys, err := c.provider.verificationKeys(ctx, doc, hdr.KeyID, hdr.Algorithm)
	if err != nil {
		return nil, invalid("%v", err)
	}
	var std jwt.Claims
	var claims map[string]any
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &std, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalid("the signature does not verify")
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return nil, invalid("exp and iat are required")
	}
	if !c.issuerMatches(std.Issuer) {
		return nil, invalid("issuer %q is not %q", std.Issuer, c.cfg.issuer)
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		AnyAudience: jwt.Audience{c.cfg.ClientID},
		Time:        c.now(),
	}, c.cfg.clockSkew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, invalid("expired at %s", std.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalid("audience %v does not include our client_id", []string(std.Audience))
	case err != nil:
		return nil, invalid("%v", err)
	}
	if azp, ok := claims["azp"].(string); (ok || len(std.Audience) > 1) && azp != c.cfg.ClientID {
		return nil, invalid("azp %q is not our client_id", azp)
	}
	if std.Subject == "" {
		return nil, invalid("no sub")
	}
	if nonce != "" {
		got, _ := claims["nonce"].(string)
		if subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
			return nil, invalid("the nonce does not match the login's")
		}
	}
	return claims, nil
}

// checkAuthTime reads the ID token's auth_time (zero when absent) and,
// for a login that asked for a recent sign-in (notBefore, Unix seconds, not
// zero), requires it, no older than notBefore (less the clock skew
// allowance): an upstream that answered from an older session of its own
// did not do what was asked.
func (c *Connector) checkAuthTime(claims map[string]any, notBefore int64) (time.Time, error) {
	var at time.Time
	if v, ok := claims["auth_time"].(float64); ok && v > 0 && v < 253402300800 {
		at = time.Unix(int64(v), 0).UTC()
	}
	if notBefore == 0 {
		return at, nil
	}
	if at.IsZero() {
		return time.Time{}, fmt.Errorf("oidc: %w: a new sign-in was asked for, but the ID token has no auth_time", connectors.ErrInvalidCallback)
	}
	if oldest := time.Unix(notBefore, 0).Add(-c.cfg.clockSkew); at.Before(oldest) {
		return time.Time{}, fmt.Errorf("oidc: %w: a sign-in after %s was asked for, but the upstream's is from %s",
			connectors.ErrInvalidCallback, time.Unix(notBefore, 0).UTC().Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return at, nil
}

// upstreamAMR reads the ID token's amr claim (RFC 8176): the methods the
// upstream says the user authenticated with. An absent claim is nil; one
// that is not an array of short tokens (connectors.CheckAMR) is ignored
// and logged: the upstream said nothing the broker can use, and an amr
// only ever raises the session's acr, so nothing is lost by dropping it.
func (c *Connector) upstreamAMR(ctx context.Context, claims map[string]any) []string {
	raw, ok := claims["amr"]
	if !ok {
		return nil
	}
	list, ok := raw.([]any)
	amr := make([]string, 0, len(list))
	for _, v := range list {
		s, isString := v.(string)
		if !isString {
			ok = false
			break
		}
		amr = append(amr, s)
	}
	if !ok || len(amr) == 0 {
		c.logger.WarnContext(ctx, "oidc: the ID token's amr is not an array of strings; ignored")
		return nil
	}
	if err := connectors.CheckAMR(amr); err != nil {
		c.logger.WarnContext(ctx, "oidc: the ID token's amr is ignored", "err", err)
		return nil
	}
	return amr
}

// issuerMatches compares an ID token's iss with the configured issuer.
// Google documents that its ID tokens may carry iss without the scheme.
func (c *Connector) issuerMatches(iss string) bool {
	if iss == c.cfg.issuer {
		return true
	}
	return c.cfg.issuer == GoogleIssuer && iss == strings.TrimPrefix(GoogleIssuer, "https://")
}

// identity maps claims to an Identity, completing them from userinfo when
// configured to, and applies the hosted-domain policy (to the ID token's
// claims only).
func (c *Connector) identity(ctx context.Context, doc *discovery, claims map[string]any, accessToken string, wantGroups bool) (connectors.Identity, error) {
	if c.cfg.HostedDomain != "" {
		hd, _ := claims["hd"].(string)
		if !strings.EqualFold(hd, c.cfg.HostedDomain) {
			return connectors.Identity{}, connectors.WithUserMessage(
				fmt.Errorf("oidc: %w: the account is not in the %s Google Workspace domain (hd %q)", connectors.ErrPolicy, c.cfg.HostedDomain, truncate(hd, 64)),
				fmt.Sprintf("Only accounts of the %s domain can sign in here.", c.cfg.HostedDomain))
		}
	}
	m := c.cfg.ClaimMapping
	missing := stringClaim(claims, m.Email) == "" || stringClaim(claims, m.Name) == "" ||
		(wantGroups && claims[m.Groups] == nil)
	if doc.UserinfoEndpoint != "" && accessToken != "" &&
		(c.cfg.Userinfo == UserinfoAlways || (c.cfg.Userinfo == UserinfoAuto && missing)) {
		if err := c.mergeUserinfo(ctx, doc, claims, accessToken); err != nil {
			return connectors.Identity{}, err
		}
	}
	ident := connectors.Identity{
		Subject:    stringClaim(claims, "sub"),
		Email:      stringClaim(claims, m.Email),
		Name:       stringClaim(claims, m.Name),
		GivenName:  stringClaim(claims, "given_name"),
		FamilyName: stringClaim(claims, "family_name"),
		Picture:    stringClaim(claims, "picture"),
		Groups:     stringsClaim(claims, m.Groups),
	}
	if ident.Email != "" {
		ident.EmailVerified = c.cfg.InsecureSkipEmailVerified || boolClaim(claims, m.EmailVerified)
	}
	if ident.Name == "" {
		ident.Name = strings.TrimSpace(ident.GivenName + " " + ident.FamilyName)
	}
	extra := map[string]any{}
	for _, k := range []string{"hd", "preferred_username", "locale", "acr", "amr"} {
		if v, ok := claims[k]; ok {
			extra[k] = v
		}
	}
	if len(extra) > 0 {
		ident.Claims = extra
	}
	return ident, nil
}

// mergeUserinfo adds userinfo claims the ID token lacks. Userinfo must be
// about the same subject.
func (c *Connector) mergeUserinfo(ctx context.Context, doc *discovery, claims map[string]any, accessToken string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, doc.UserinfoEndpoint, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	var info map[string]any
	if err := doJSON(c.http, req, &info); err != nil {
		return fmt.Errorf("oidc: userinfo: %w", err)
	}
	if sub, _ := info["sub"].(string); sub != claims["sub"] {
		return fmt.Errorf("oidc: %w: userinfo is about another subject", connectors.ErrInvalidCallback)
	}
	for k, v := range info {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return nil
}

func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// boolClaim reads a boolean claim; some providers send "true" as a string.
func boolClaim(claims map[string]any, name string) bool {
	switch v := claims[name].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// stringsClaim reads a list of strings, or a single string as a list.
func stringsClaim(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// randomString is n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
