package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Presets.
const (
	PresetOkta   = "okta"
	PresetGoogle = "google"
)

// GoogleIssuer is Google's OpenID Connect issuer.
const GoogleIssuer = "https://accounts.google.com"

// Userinfo modes.
const (
	UserinfoAuto   = "auto"   // call userinfo when the ID token lacks e-mail, name or requested groups
	UserinfoAlways = "always" // call it on every login and refresh
	UserinfoNever  = "never"
)

// Config is the connector's configuration: the JSON form of its `config:`
// block in the broker's YAML.
type Config struct {
	// Preset is "", "okta" or "google".
	Preset string `json:"preset"`
	// Issuer is the upstream issuer. With a preset it overrides the
	// preset's issuer (tests and the demo point it at fakeidp).
	Issuer string `json:"issuer"`
	// Domain is the Okta org domain (preset okta), e.g. dev-123.okta.com.
	Domain string `json:"domain"`
	// AuthorizationServer is the Okta authorization server id
	// (default "default").
	AuthorizationServer string `json:"authorization_server"`
	// HostedDomain restricts Google logins to one Workspace domain: the
	// ID token's hd claim must equal it.
	HostedDomain string `json:"hosted_domain"`

	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// Scopes default to openid, profile and email; openid is always sent.
	Scopes []string `json:"scopes"`
	// GroupsScope is added when the broker's client asks for groups
	// (default "groups" with preset okta, none otherwise).
	GroupsScope string `json:"groups_scope"`
	// ClaimMapping names the upstream claims to read.
	ClaimMapping ClaimMapping `json:"claim_mapping"`
	// InsecureSkipEmailVerified treats every upstream e-mail as verified.
	// Only for upstreams that verify e-mails but do not say so.
	InsecureSkipEmailVerified bool `json:"insecure_skip_email_verified"`
	// Userinfo is auto (default), always or never.
	Userinfo string `json:"userinfo"`
	// DisablePKCE stops sending a PKCE challenge, for upstreams that
	// reject one. PKCE is on by default.
	DisablePKCE bool `json:"disable_pkce"`
	// SigningAlgorithms is the ID token algorithm allow-list (default
	// RS256 and ES256).
	SigningAlgorithms []string `json:"signing_algorithms"`
	// Timeout bounds every upstream HTTP call (default "10s").
	Timeout string `json:"timeout"`
	// ClockSkew is the leeway for exp, iat and nbf (default "30s").
	ClockSkew string `json:"clock_skew"`
}

// ClaimMapping names the claims identities are built from.
type ClaimMapping struct {
	Email         string `json:"email"`          // default "email"
	EmailVerified string `json:"email_verified"` // default "email_verified"
	Name          string `json:"name"`           // default "name"
	Groups        string `json:"groups"`         // default "groups"
}

// settings is a Config resolved and checked.
type settings struct {
	Config
	issuer    string
	algs      []jose.SignatureAlgorithm
	timeout   time.Duration
	clockSkew time.Duration
}

// ParseConfig decodes a JSON configuration, refusing unknown keys.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("oidc: parse config: %w", err)
	}
	return cfg, nil
}

func (c Config) resolve() (settings, error) {
	s := settings{Config: c}
	switch c.Preset {
	case "":
		s.issuer = c.Issuer
		if s.issuer == "" {
			return s, errors.New("issuer is required")
		}
	case PresetOkta:
		s.issuer = c.Issuer
		if s.AuthorizationServer == "" {
			s.AuthorizationServer = "default"
		}
		if s.issuer == "" {
			if c.Domain == "" {
				return s, errors.New("preset okta needs domain (e.g. dev-123.okta.com)")
			}
			if strings.ContainsAny(c.Domain, "/?#@ ") || strings.ContainsAny(s.AuthorizationServer, "/?#@ ") {
				return s, errors.New("domain and authorization_server must be a bare host name and id")
			}
			s.issuer = "https://" + c.Domain + "/oauth2/" + s.AuthorizationServer
		}
		if s.GroupsScope == "" {
			s.GroupsScope = "groups"
		}
	case PresetGoogle:
		s.issuer = c.Issuer
		if s.issuer == "" {
			s.issuer = GoogleIssuer
		}
	default:
		return s, fmt.Errorf("unknown preset %q (want okta or google)", c.Preset)
	}
	if c.HostedDomain != "" && c.Preset != PresetGoogle {
		return s, errors.New("hosted_domain needs preset google")
	}
	if err := checkIssuer(s.issuer); err != nil {
		return s, err
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return s, errors.New("client_id and client_secret are required")
	}
	if len(s.Scopes) == 0 {
		s.Scopes = []string{"openid", "profile", "email"}
	} else if !slices.Contains(s.Scopes, "openid") {
		s.Scopes = append([]string{"openid"}, s.Scopes...)
	}
	setDefault(&s.ClaimMapping.Email, "email")
	setDefault(&s.ClaimMapping.EmailVerified, "email_verified")
	setDefault(&s.ClaimMapping.Name, "name")
	setDefault(&s.ClaimMapping.Groups, "groups")
	switch s.Userinfo {
	case "":
		s.Userinfo = UserinfoAuto
	case UserinfoAuto, UserinfoAlways, UserinfoNever:
	default:
		return s, fmt.Errorf("userinfo must be auto, always or never, not %q", s.Userinfo)
	}
	algs := s.SigningAlgorithms
	if len(algs) == 0 {
		algs = []string{"RS256", "ES256"}
	}
	for _, a := range algs {
		switch alg := jose.SignatureAlgorithm(a); alg {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
			jose.ES256, jose.ES384, jose.ES512, jose.EdDSA:
			s.algs = append(s.algs, alg)
		default:
			return s, fmt.Errorf("signing algorithm %q is not allowed (asymmetric algorithms only)", a)
		}
	}
	var err error
	if s.timeout, err = parseDuration(s.Timeout, 10*time.Second); err != nil {
		return s, fmt.Errorf("timeout: %w", err)
	}
	if s.clockSkew, err = parseDuration(s.ClockSkew, 30*time.Second); err != nil {
		return s, fmt.Errorf("clock_skew: %w", err)
	}
	return s, nil
}

// checkIssuer allows https issuers, and http only on loopback.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q is not an absolute URL without query or fragment", issuer)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("issuer %q must use https (http is allowed on loopback only)", issuer)
}

func setDefault(v *string, def string) {
	if *v == "" {
		*v = def
	}
}

func parseDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}
