// Package facebook is the Facebook Login connector: the OAuth 2.0 login
// dialog, the Graph API code exchange, and the user's profile from Graph
// /me, every Graph call signed with appsecret_proof.
package facebook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/connectors/upstreamtime"
)

// Defaults.
const (
	DefaultAPIVersion = "v23.0"
	DefaultDialogURL  = "https://www.facebook.com"
	DefaultGraphURL   = "https://graph.facebook.com"
)

// Missing e-mail policies.
const (
	MissingEmailReject = "reject"
	MissingEmailAllow  = "allow"
)

// profileFields are the Graph fields the connector reads.
const profileFields = "id,name,email,first_name,last_name,picture"

const maxBody = 1 << 20

// Config is the connector's configuration: the JSON form of its `config:`
// block in the broker's YAML.
type Config struct {
	// ClientID and ClientSecret are the Facebook app's id and secret.
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// Scopes are the permissions asked for (default email, public_profile).
	Scopes []string `json:"scopes"`
	// APIVersion is the Graph API version (default v23.0).
	APIVersion string `json:"api_version"`
	// DialogURL is the base of the login dialog (default
	// https://www.facebook.com); GraphURL the Graph API's (default
	// https://graph.facebook.com). Tests point both at fakeidp.
	DialogURL string `json:"dialog_url"`
	GraphURL  string `json:"graph_url"`
	// MissingEmail is what to do when Facebook shares no e-mail address:
	// reject (default) refuses the login with a message for the user,
	// allow logs the user in without an e-mail.
	MissingEmail string `json:"missing_email"`
	// TrustEmail marks Facebook e-mail addresses as verified. Facebook
	// does not say whether an address is confirmed, so the default is no.
	TrustEmail bool `json:"trust_email"`
	// Timeout bounds every Facebook call (default "10s").
	Timeout string `json:"timeout"`
}

// Connector logs users in with Facebook.
type Connector struct {
	cfg     Config
	dialog  string // {DialogURL}/{version}/dialog/oauth
	graph   string // {GraphURL}/{version}
	http    *http.Client
	logger  *slog.Logger
	timeout time.Duration
}

var (
	_ connectors.Connector        = (*Connector)(nil)
	_ connectors.RefreshConnector = (*Connector)(nil)
)

// Open builds a connector from its JSON configuration. It is a
// connectors.OpenFunc.
func Open(ctx context.Context, config []byte, logger *slog.Logger) (connectors.Connector, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("facebook: parse config: %w", err)
	}
	return New(ctx, cfg, logger)
}

// New builds a connector from a decoded configuration.
func New(_ context.Context, cfg Config, logger *slog.Logger) (*Connector, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("facebook: config: client_id and client_secret are required")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"email", "public_profile"}
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if strings.ContainsAny(cfg.APIVersion, "/?#") {
		return nil, fmt.Errorf("facebook: config: api_version %q is not a version like v23.0", cfg.APIVersion)
	}
	if cfg.DialogURL == "" {
		cfg.DialogURL = DefaultDialogURL
	}
	if cfg.GraphURL == "" {
		cfg.GraphURL = DefaultGraphURL
	}
	for _, base := range []string{cfg.DialogURL, cfg.GraphURL} {
		if err := checkBaseURL(base); err != nil {
			return nil, fmt.Errorf("facebook: config: %w", err)
		}
	}
	switch cfg.MissingEmail {
	case "":
		cfg.MissingEmail = MissingEmailReject
	case MissingEmailReject, MissingEmailAllow:
	default:
		return nil, fmt.Errorf("facebook: config: missing_email must be reject or allow, not %q", cfg.MissingEmail)
	}
	timeout := 10 * time.Second
	if cfg.Timeout != "" {
		d, err := time.ParseDuration(cfg.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("facebook: config: timeout %q is not a positive duration", cfg.Timeout)
		}
		timeout = d
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{
		cfg:     cfg,
		dialog:  strings.TrimSuffix(cfg.DialogURL, "/") + "/" + cfg.APIVersion + "/dialog/oauth",
		graph:   strings.TrimSuffix(cfg.GraphURL, "/") + "/" + cfg.APIVersion,
		http:    &http.Client{Timeout: timeout, Transport: upstreamtime.Transport(http.DefaultTransport.(*http.Transport).Clone())},
		logger:  logger,
		timeout: timeout,
	}, nil
}

// checkBaseURL allows https, and http on loopback only.
func checkBaseURL(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("%q is not an absolute URL", base)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("%q must use https (http is allowed on loopback only)", base)
}

// reauthState is the connector state of a login that asked Facebook to
// make the person enter their password again.
const reauthState = "reauthenticate"

// CanReauthenticate implements connectors.ReauthConnector: Facebook's
// login dialog takes auth_type=reauthenticate, which always asks for the
// password, even of a person signed in to Facebook.
func (c *Connector) CanReauthenticate() bool { return true }

// LoginURL builds the login dialog URL. Facebook keeps no per-login secret
// beyond the broker's state, so the connector state is empty but for a
// login that must be a new sign-in (ForceLogin or MaxAge: Facebook reports
// no sign-in time, so any max_age asks for the password again).
func (c *Connector) LoginURL(_ context.Context, req connectors.LoginRequest) (connectors.LoginResponse, error) {
	if req.State == "" || req.CallbackURL == "" {
		return connectors.LoginResponse{}, errors.New("facebook: LoginURL needs a state and a callback URL")
	}
	q := url.Values{
		"client_id":     {c.cfg.ClientID},
		"redirect_uri":  {req.CallbackURL},
		"state":         {req.State},
		"response_type": {"code"},
		"scope":         {strings.Join(c.cfg.Scopes, ",")},
	}
	var state []byte
	if req.Fresh() {
		q.Set("auth_type", "reauthenticate")
		state = []byte(reauthState)
	}
	return connectors.LoginResponse{URL: c.dialog + "?" + q.Encode(), ConnectorState: state}, nil
}

// connectorData is kept with the identity for Refresh.
type connectorData struct {
	AccessToken string `json:"access_token"`
}

// HandleCallback redeems the code, reads the profile and applies the
// e-mail policy.
func (c *Connector) HandleCallback(ctx context.Context, req connectors.CallbackRequest) (connectors.Identity, error) {
	q := req.Query
	if e := q.Get("error"); e != "" {
		reason := q.Get("error_reason")
		if reason == "" {
			reason = q.Get("error_description")
		}
		return connectors.Identity{}, fmt.Errorf("facebook: %w: %s (%s)", connectors.ErrUpstreamDenied, truncate(e, 64), truncate(reason, 256))
	}
	code := q.Get("code")
	if code == "" {
		return connectors.Identity{}, fmt.Errorf("facebook: %w: the callback has no code", connectors.ErrInvalidCallback)
	}
	token, err := c.exchange(ctx, code, req.CallbackURL)
	if err != nil {
		return connectors.Identity{}, err
	}
	p, err := c.me(ctx, token)
	if err != nil {
		return connectors.Identity{}, fmt.Errorf("facebook: read profile: %w", err)
	}
	if p.ID == "" {
		return connectors.Identity{}, fmt.Errorf("facebook: %w: the profile has no id", connectors.ErrInvalidCallback)
	}
	if p.Email == "" && c.cfg.MissingEmail == MissingEmailReject {
		return connectors.Identity{}, connectors.WithUserMessage(
			fmt.Errorf("facebook: %w: Facebook did not share an e-mail address for this account", connectors.ErrPolicy),
			"Facebook did not share an e-mail address for this account. Allow access to your e-mail address when Facebook asks, or sign in another way.")
	}
	ident := c.identity(p)
	data, err := json.Marshal(connectorData{AccessToken: token})
	if err != nil {
		return connectors.Identity{}, fmt.Errorf("facebook: encode connector data: %w", err)
	}
	ident.ConnectorData = data
	if string(req.ConnectorState) == reauthState {
		// The dialog asked for the password after LoginURL: the person
		// signed in between then and now. Otherwise Facebook does not say
		// when they did, and AuthTime stays unknown.
		ident.AuthTime = time.Now().UTC().Truncate(time.Second)
	}
	return ident, nil
}

// revokedSubcode reports whether a Graph code-190 subcode means the person
// took the app's access away or Facebook locked the session: 458 app
// removed, 459 account checkpointed, 460 password changed, 464 unconfirmed.
func revokedSubcode(n int) bool {
	switch n {
	case 458, 459, 460, 464:
		return true
	}
	return false
}

// Refresh re-reads the profile with the access token kept at login. A token
// Facebook invalidated because the app was removed, the password changed or
// the account was locked revokes the identity; an expired token cannot be
// checked, so the identity stays as it was.
func (c *Connector) Refresh(ctx context.Context, _ connectors.Scopes, ident connectors.Identity) (connectors.Identity, error) {
	var data connectorData
	if len(ident.ConnectorData) == 0 {
		return ident, nil
	}
	if err := json.Unmarshal(ident.ConnectorData, &data); err != nil {
		return connectors.Identity{}, fmt.Errorf("facebook: connector data unreadable: %w", err)
	}
	if data.AccessToken == "" {
		return ident, nil
	}
	p, err := c.me(ctx, data.AccessToken)
	var ge *graphError
	switch {
	case errors.As(err, &ge) && ge.Code == 190 && revokedSubcode(ge.Subcode):
		return connectors.Identity{}, fmt.Errorf("facebook: %w: %s", connectors.ErrIdentityRevoked, ge.Error())
	case errors.As(err, &ge) && ge.Code == 190:
		// Expired (463) or otherwise unusable (467: e.g. the user logged
		// out of Facebook): nothing says the account is gone.
		c.logger.Debug("facebook: access token no longer usable; the identity cannot be re-checked",
			"subject", ident.Subject, "subcode", ge.Subcode)
		return ident, nil
	case err != nil:
		return connectors.Identity{}, fmt.Errorf("facebook: re-read profile: %w", err)
	case p.ID != ident.Subject:
		return connectors.Identity{}, fmt.Errorf("facebook: %w: the token now belongs to another user", connectors.ErrIdentityRevoked)
	}
	fresh := c.identity(p)
	if fresh.Email == "" {
		fresh.Email, fresh.EmailVerified = ident.Email, ident.EmailVerified
	}
	fresh.ConnectorData = ident.ConnectorData
	return fresh, nil
}

func (c *Connector) identity(p *profile) connectors.Identity {
	ident := connectors.Identity{
		Subject:       p.ID,
		Email:         p.Email,
		EmailVerified: p.Email != "" && c.cfg.TrustEmail,
		Name:          p.Name,
		GivenName:     p.FirstName,
		FamilyName:    p.LastName,
	}
	if p.Picture != nil && !p.Picture.Data.IsSilhouette {
		ident.Picture = p.Picture.Data.URL
	}
	return ident
}

// exchange trades the dialog's code for a user access token.
func (c *Connector) exchange(ctx context.Context, code, callbackURL string) (string, error) {
	form := url.Values{
		"client_id":     {c.cfg.ClientID},
		"client_secret": {c.cfg.ClientSecret},
		"redirect_uri":  {callbackURL},
		"code":          {code},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.graph+"/oauth/access_token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("facebook: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := c.do(req, &tok); err != nil {
		var ge *graphError
		if errors.As(err, &ge) && ge.Code == 100 {
			// Code 100 is a bad, used or expired code; 1 and 101 mean our
			// app credentials are wrong (a configuration error).
			return "", fmt.Errorf("facebook: %w: the code was refused: %s", connectors.ErrUpstreamDenied, ge.Error())
		}
		return "", fmt.Errorf("facebook: redeem code: %w", err)
	}
	if tok.AccessToken == "" {
		return "", errors.New("facebook: the token answer has no access_token")
	}
	return tok.AccessToken, nil
}

// profile is Graph /me's answer.
type profile struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Picture   *struct {
		Data struct {
			URL          string `json:"url"`
			IsSilhouette bool   `json:"is_silhouette"`
		} `json:"data"`
	} `json:"picture"`
}

// me reads the user's profile, proving knowledge of the app secret.
func (c *Connector) me(ctx context.Context, token string) (*profile, error) {
	q := url.Values{
		"fields":          {profileFields},
		"access_token":    {token},
		"appsecret_proof": {AppSecretProof(c.cfg.ClientSecret, token)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.graph+"/me?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	var p profile
	if err := c.do(req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AppSecretProof is the hex HMAC-SHA256 of an access token keyed by the app
// secret, which Graph requires when "Require App Secret" is on.
func AppSecretProof(appSecret, accessToken string) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write([]byte(accessToken))
	return hex.EncodeToString(mac.Sum(nil))
}

// graphError is a Graph API error answer.
type graphError struct {
	Status  int
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Subcode int    `json:"error_subcode"`
}

func (e *graphError) Error() string {
	return fmt.Sprintf("Graph API answered %d: %s (%s, code %d, subcode %d)", e.Status, truncate(e.Message, 256), e.Type, e.Code, e.Subcode)
}

func (c *Connector) do(req *http.Request, v any) error {
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var wrapped struct {
			Error *graphError `json:"error"`
		}
		if json.Unmarshal(body, &wrapped) == nil && wrapped.Error != nil {
			wrapped.Error.Status = resp.StatusCode
			return wrapped.Error
		}
		return fmt.Errorf("graph API answered HTTP %d", resp.StatusCode)
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
