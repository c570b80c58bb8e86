// Package config holds the broker's configuration: a YAML file with ${ENV}
// expansion, defaults, and a command-line flag for every scalar key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration. Every scalar field is also a flag
// named after its YAML path (see BindFlags), e.g. tokens.access_token_lifetime
// is --tokens.access-token-lifetime; the most used have short aliases
// (--issuer, --listen, --dsn).
type Config struct {
	// Issuer is the broker's public base URL; the iss of every token.
	Issuer string `yaml:"issuer" help:"public base URL of the broker, the iss of every token (e.g. https://id.example.com)"`
	// Listen is the address the HTTP server binds.
	Listen string `yaml:"listen" help:"address to listen on (host:port)"`
	// DSN selects the database: sqlite:PATH or postgres://…
	DSN string `yaml:"dsn" help:"database: sqlite:PATH (default) or postgres://user@host/db"`

	Secrets    Secrets     `yaml:"secrets"`
	Keys       Keys        `yaml:"keys"`
	Tokens     Tokens      `yaml:"tokens"`
	DPoP       DPoP        `yaml:"dpop"`
	Session    Session     `yaml:"session"`
	Log        Log         `yaml:"log"`
	TLS        TLS         `yaml:"tls"`
	UI         UI          `yaml:"ui"`
	Accounts   Accounts    `yaml:"accounts"`
	Connectors []Connector `yaml:"connectors"`
	Federation Federation  `yaml:"federation"`
	GC         GC          `yaml:"gc"`
	Metrics    Metrics     `yaml:"metrics"`

	// TrustedProxies lists the networks of reverse proxies whose
	// X-Forwarded-For and X-Forwarded-Proto headers are believed.
	TrustedProxies string `yaml:"trusted_proxies" help:"comma-separated networks (CIDR or address) of reverse proxies whose X-Forwarded-For/-Proto are trusted"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string `yaml:"listen" help:"serve /metrics on this address of its own (e.g. 127.0.0.1:9100); unset: no /metrics (never on the main listener)"`
	Off    bool   `yaml:"off" help:"serve no /metrics even when metrics.listen is set"`
}

// Secrets holds the root secret.
type Secrets struct {
	System string `yaml:"system" help:"system secret (32+ bytes, base64); default $BRIDGEKEEPER_SYSTEM_SECRET, or generated next to an SQLite database"`
}

// Keys configures the JWT signing keys.
type Keys struct {
	Algorithm      string        `yaml:"algorithm" help:"signing algorithm for new keys: RS256 or ES256"`
	RotationPeriod time.Duration `yaml:"rotation_period" help:"how long a key signs before the next one takes over (0 or negative: no scheduled rotation)"`
}

// Tokens configures token lifetimes.
type Tokens struct {
	AccessTokenLifetime   time.Duration `yaml:"access_token_lifetime" help:"lifetime of access tokens"`
	IDTokenLifetime       time.Duration `yaml:"id_token_lifetime" help:"lifetime of ID tokens"`
	RefreshTokenLifetime  time.Duration `yaml:"refresh_token_lifetime" help:"lifetime of a refresh token (renewed on every rotation)"`
	AuthorizeCodeLifetime time.Duration `yaml:"authorize_code_lifetime" help:"lifetime of authorization codes"`
	RefreshReuseGrace     time.Duration `yaml:"refresh_reuse_grace" help:"a refresh token used again this soon after its rotation is refused without revoking its grant (concurrent refreshes); later reuse revokes it (0: off, at most 5m)"`
}

// DPoP configures sender-constrained tokens (RFC 9449).
type DPoP struct {
	Nonce       bool          `yaml:"nonce" help:"require a server nonce (DPoP-Nonce) in every DPoP proof, at the token endpoint and /userinfo: a proof made in advance stops working within two minutes (RFC 9449 section 8)"`
	ProofMaxAge time.Duration `yaml:"proof_max_age" help:"how old a DPoP proof's iat may be (its jti is remembered that long; 1s to 5m)"`
}

// Session configures the broker's browser session.
type Session struct {
	Lifetime             time.Duration `yaml:"lifetime" help:"lifetime of the broker's login session cookie"`
	PendingLoginLifetime time.Duration `yaml:"pending_login_lifetime" help:"how long a user has to finish logging in"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level" help:"log level: debug, info, warn, error"`
	Format string `yaml:"format" help:"log format: text or json"`
}

// TLS configures HTTPS serving.
type TLS struct {
	CertFile string `yaml:"cert_file" help:"TLS certificate file (PEM); serve HTTPS when set"`
	KeyFile  string `yaml:"key_file" help:"TLS private key file (PEM)"`
}

// UI configures the login and account pages.
type UI struct {
	TemplateDir  string `yaml:"template_dir" help:"directory of templates overriding the embedded ones"`
	ProductName  string `yaml:"product_name" help:"name shown on the login pages"`
	LogoURL      string `yaml:"logo_url" help:"logo shown on the login pages"`
	PrimaryColor string `yaml:"primary_color" help:"primary colour of the login pages (CSS colour)"`
}

// Accounts configures local accounts.
type Accounts struct {
	RequireActivation bool   `yaml:"require_activation" help:"refuse login until the e-mail address is confirmed"`
	AllowRegistration bool   `yaml:"allow_registration" help:"let people create accounts on /register"`
	LinkByEmail       bool   `yaml:"link_by_email" help:"link the first login through a connector with trust_email to the existing user with the same verified e-mail: at once when the user has no password, after the person enters the account's password when it has one"`
	SMTP              SMTP   `yaml:"smtp"`
	MailFrom          string `yaml:"mail_from" help:"sender address of account e-mails"`
	// MFA is the second-factor policy of local accounts.
	MFA string `yaml:"mfa" help:"second factors of local accounts: off, optional (a user who set up an authenticator app is asked for a code after the password) or required (every local user sets one up at the next sign-in)"`
	// MFAResetByEmail lets the password reset by e-mail remove the second
	// factors too (otherwise only bridgekeeper user reset-mfa does).
	MFAResetByEmail bool `yaml:"mfa_reset_by_email" help:"a password reset by e-mail also removes the account's second factors (default off: an operator runs bridgekeeper user reset-mfa)"`
	// Passkeys configures WebAuthn sign-in of local accounts.
	Passkeys Passkeys `yaml:"passkeys"`
}

// Passkeys configures passkeys (WebAuthn) of local accounts.
type Passkeys struct {
	Enabled bool   `yaml:"enabled" help:"offer passkeys: users add them on the account page and sign in with one on the login page, without a password"`
	RPID    string `yaml:"rp_id" help:"WebAuthn relying-party ID (default: the issuer's host name); set it, with origins, for a broker whose pages are served under another host name"`
	Origins string `yaml:"origins" help:"comma-separated origins (scheme://host[:port]) WebAuthn answers may come from (default: the issuer's origin)"`
}

// SMTP configures the mailer; with no host, links are logged instead.
type SMTP struct {
	Host     string `yaml:"host" help:"SMTP server host (empty: log e-mails instead of sending them)"`
	Port     int    `yaml:"port" help:"SMTP server port"`
	Username string `yaml:"username" help:"SMTP user name"`
	Password string `yaml:"password" help:"SMTP password"`
	TLS      string `yaml:"tls" help:"SMTP transport security: starttls, tls or none"`
}

// Federation configures logins through connectors.
type Federation struct {
	// RecheckInterval bounds how old the upstream check of a federated
	// session may be when the broker reuses the session silently.
	RecheckInterval time.Duration `yaml:"recheck_interval" help:"re-check a federated user upstream before reusing their broker session silently when the last check is older than this (0: on every reuse)"`
	// RequireConnectors makes a failing connector plugin fail readiness
	// (503) instead of reporting the broker as degraded (200).
	RequireConnectors bool `yaml:"require_connectors" help:"a connector plugin failing its health check makes /readyz answer 503 (default: 200 with status degraded, the connector named as failing)"`
}

// GC configures the collection of expired rows.
type GC struct {
	Interval time.Duration `yaml:"interval" help:"how often expired codes, tokens and sessions are deleted (0: never)"`
}

// Connector is one upstream identity provider, served by a plugin binary.
type Connector struct {
	ID          string        `yaml:"id"`
	Name        string        `yaml:"name"`
	Path        string        `yaml:"path"`
	Args        []string      `yaml:"args"`
	Env         []string      `yaml:"env"`
	SHA256      string        `yaml:"sha256"`
	CallTimeout time.Duration `yaml:"call_timeout"`
	// StartTimeout bounds the plugin's start and handshake (default 10s).
	StartTimeout time.Duration `yaml:"start_timeout"`
	// AutoMTLS secures the broker–plugin gRPC connection with mutual TLS
	// (default true; plugins that are not built on go-plugin, such as the
	// Node.js example, need false).
	AutoMTLS *bool `yaml:"auto_mtls"`
	// TrustEmail says the provider behind this connector is trusted to
	// verify e-mail addresses (default false): only then does a user it
	// creates get its verified e-mail address, and only then may that
	// address link a first login to an existing user without the user
	// proving control of that account (accounts.link_by_email).
	TrustEmail bool           `yaml:"trust_email"`
	Config     map[string]any `yaml:"config"`
}

// MTLS reports whether the connection to the plugin uses mutual TLS.
func (c Connector) MTLS() bool { return c.AutoMTLS == nil || *c.AutoMTLS }

// Default returns the configuration used where nothing else is said.
func Default() Config {
	return Config{
		Issuer: "http://127.0.0.1:8080",
		Listen: "127.0.0.1:8080",
		DSN:    "sqlite:data/bridgekeeper.db",
		Keys:   Keys{Algorithm: "RS256", RotationPeriod: 30 * 24 * time.Hour},
		Tokens: Tokens{
			AccessTokenLifetime:   15 * time.Minute,
			IDTokenLifetime:       time.Hour,
			RefreshTokenLifetime:  30 * 24 * time.Hour,
			AuthorizeCodeLifetime: 2 * time.Minute,
			RefreshReuseGrace:     10 * time.Second,
		},
		DPoP:       DPoP{ProofMaxAge: time.Minute},
		Session:    Session{Lifetime: 24 * time.Hour, PendingLoginLifetime: 10 * time.Minute},
		Log:        Log{Level: "info", Format: "text"},
		UI:         UI{ProductName: "Bridgekeeper"},
		Accounts:   Accounts{RequireActivation: true, AllowRegistration: true, MFA: "optional", Passkeys: Passkeys{Enabled: true}, SMTP: SMTP{Port: 587, TLS: "starttls"}, MailFrom: "Bridgekeeper <no-reply@localhost>"},
		GC:         GC{Interval: 10 * time.Minute},
		Federation: Federation{RecheckInterval: 5 * time.Minute},
	}
}

// Load reads a YAML file over the defaults, expanding ${VAR} references
// from the environment first. Unknown keys are an error, so typos show.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	expanded, err := ExpandEnv(string(raw), os.LookupEnv)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(expanded), &doc); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := checkKeys(&doc); err != nil {
		return cfg, fmt.Errorf("config %s:\n%w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// ExpandEnv replaces ${VAR} with the variable's value and ${VAR:-default}
// with the value or the default. A reference to an unset variable with no
// default is an error naming it. "$$" stays a literal "$". Other "$" are
// left alone, so bcrypt-like strings survive.
func ExpandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	s = strings.ReplaceAll(s, "$${", "\x00{")
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := lookup(m[1]); ok && (v != "" || m[2] == "") {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		missing = append(missing, m[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for an optional value)", strings.Join(missing, ", "), missing[0])
	}
	return strings.ReplaceAll(out, "\x00{", "${"), nil
}

// Validate checks the configuration and says what is wrong in words an
// operator can act on.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		errs = append(errs, errors.New("issuer is required"))
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		errs = append(errs, fmt.Errorf("issuer %q must be an absolute http(s) URL", c.Issuer))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("issuer %q must not have a query or fragment", c.Issuer))
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		errs = append(errs, fmt.Errorf("issuer %q uses http on a non-loopback host: use https", c.Issuer))
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("listen is required"))
	}
	switch c.Accounts.MFA {
	case "off", "optional", "required":
	default:
		errs = append(errs, fmt.Errorf("accounts.mfa %q: use off, optional or required", c.Accounts.MFA))
	}
	if c.DSN == "" {
		errs = append(errs, errors.New("dsn is required"))
	}
	switch c.Keys.Algorithm {
	case "RS256", "ES256":
	default:
		errs = append(errs, fmt.Errorf("keys.algorithm %q: use RS256 or ES256", c.Keys.Algorithm))
	}
	for name, d := range map[string]time.Duration{
		"tokens.access_token_lifetime":   c.Tokens.AccessTokenLifetime,
		"tokens.id_token_lifetime":       c.Tokens.IDTokenLifetime,
		"tokens.refresh_token_lifetime":  c.Tokens.RefreshTokenLifetime,
		"tokens.authorize_code_lifetime": c.Tokens.AuthorizeCodeLifetime,
		"session.lifetime":               c.Session.Lifetime,
		"session.pending_login_lifetime": c.Session.PendingLoginLifetime,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if g := c.Tokens.RefreshReuseGrace; g < 0 || g > 5*time.Minute {
		errs = append(errs, fmt.Errorf("tokens.refresh_reuse_grace %v must be between 0 (off) and 5m", g))
	}
	if a := c.DPoP.ProofMaxAge; a < time.Second || a > 5*time.Minute {
		errs = append(errs, fmt.Errorf("dpop.proof_max_age %v must be between 1s and 5m", a))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file and tls.key_file go together"))
	}
	seen := map[string]bool{}
	for i, cn := range c.Connectors {
		switch {
		case cn.ID == "":
			errs = append(errs, fmt.Errorf("connectors[%d]: id is required", i))
		case !validID.MatchString(cn.ID):
			errs = append(errs, fmt.Errorf("connectors[%d]: id %q may hold only letters, digits, '-' and '_'", i, cn.ID))
		case seen[cn.ID]:
			errs = append(errs, fmt.Errorf("connectors[%d]: id %q is used twice", i, cn.ID))
		case cn.ID == "local":
			errs = append(errs, fmt.Errorf("connectors[%d]: id \"local\" is reserved for local accounts", i))
		}
		seen[cn.ID] = true
		if cn.Path == "" {
			errs = append(errs, fmt.Errorf("connectors[%d] (%s): path to the plugin binary is required", i, cn.ID))
		}
	}
	return errors.Join(errs...)
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func isLoopbackHost(h string) bool {
	return h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.")
}
