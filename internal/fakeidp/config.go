package fakeidp

import (
	"errors"
	"fmt"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// User is an account at the fake upstream. The same users log in through
// every flavour (Okta, Google, Facebook).
type User struct {
	Subject       string   `yaml:"subject" json:"subject"`
	Email         string   `yaml:"email" json:"email"`
	EmailVerified bool     `yaml:"email_verified" json:"email_verified"`
	Name          string   `yaml:"name" json:"name"`
	GivenName     string   `yaml:"given_name" json:"given_name"`
	FamilyName    string   `yaml:"family_name" json:"family_name"`
	Picture       string   `yaml:"picture" json:"picture"`
	Groups        []string `yaml:"groups" json:"groups"`
	// HostedDomain is the Google Workspace domain (the `hd` claim).
	HostedDomain string `yaml:"hd" json:"hd"`
	// Password is checked by the e-mail + password form; the "pick a user"
	// buttons skip it.
	Password string `yaml:"password" json:"password"`
	// AMR is the amr claim of the user's ID tokens (RFC 8176), as Okta
	// sends ["pwd", "mfa", "otp"] for a sign-in with a second factor;
	// empty: no amr claim.
	AMR []string `yaml:"amr" json:"amr"`
	// Disabled users cannot log in, refresh or call userinfo.
	Disabled bool `yaml:"disabled" json:"disabled"`
}

// Client is a registered relying party (an OAuth client or Facebook app).
type Client struct {
	ID           string   `yaml:"id" json:"id"`
	Secret       string   `yaml:"secret" json:"secret"`
	RedirectURIs []string `yaml:"redirect_uris" json:"redirect_uris"`
}

// Config is what the fake upstream knows: its users and clients.
type Config struct {
	Users   []User   `yaml:"users" json:"users"`
	Clients []Client `yaml:"clients" json:"clients"`
	// BaseURL, when set, is the external base of every issuer
	// (e.g. http://127.0.0.1:5556). When empty it is taken from each
	// request's Host header.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// SigningAlgorithm is RS256 (the default) or ES256.
	SigningAlgorithm string `yaml:"signing_algorithm" json:"signing_algorithm"`
	// OktaRefreshGrace is how long an Okta refresh token the upstream has
	// already rotated stays usable, as Okta's "grace period for token
	// rotation" does (0 to 60 s there; 30 s by default). Zero here: a
	// rotated token is refused at once.
	OktaRefreshGrace time.Duration `yaml:"okta_refresh_grace" json:"okta_refresh_grace"`
}

// oktaDefaultRefreshGrace is Okta's default grace period for rotated
// refresh tokens, used by the demo config and by users files that do not
// set okta_refresh_grace.
const oktaDefaultRefreshGrace = 30 * time.Second

// DemoPassword is the password of every demo user.
const DemoPassword = "password"

// DemoConfig returns the demo users and one client registered for a broker
// on 127.0.0.1:8080 or localhost:8080 with connectors named okta, google and
// facebook.
func DemoConfig() Config {
	var redirects []string
	for _, host := range []string{"http://127.0.0.1:8080", "http://localhost:8080"} {
		for _, id := range []string{"okta", "google", "facebook"} {
			redirects = append(redirects, host+"/callback/"+id)
		}
	}
	return Config{
		Users: []User{
			{Subject: "1001", Email: "alice@example.com", EmailVerified: true, Name: "Alice Anderson",
				GivenName: "Alice", FamilyName: "Anderson", Groups: []string{"admins", "developers"},
				HostedDomain: "example.com", Password: DemoPassword,
				Picture: "https://example.com/avatars/alice.png"},
			{Subject: "1002", Email: "bob@example.org", EmailVerified: true, Name: "Bob Brown",
				GivenName: "Bob", FamilyName: "Brown", Groups: []string{"developers"}, Password: DemoPassword},
			{Subject: "1003", Email: "carol@example.net", EmailVerified: false, Name: "Carol Clark",
				GivenName: "Carol", FamilyName: "Clark", Password: DemoPassword},
			{Subject: "1004", Name: "Dave Davis", GivenName: "Dave", FamilyName: "Davis", Password: DemoPassword},
			{Subject: "1005", Email: "erin@example.com", EmailVerified: true, Name: "Erin Evans",
				GivenName: "Erin", FamilyName: "Evans", HostedDomain: "example.com", Password: DemoPassword,
				Disabled: true},
		},
		Clients:          []Client{{ID: "bridgekeeper", Secret: "bridgekeeper-secret", RedirectURIs: redirects}},
		OktaRefreshGrace: oktaDefaultRefreshGrace,
	}
}

// LoadConfig reads users and clients from a YAML or JSON file. A file that
// lists no clients gets the demo client.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read fake IdP config: %w", err)
	}
	cfg := Config{OktaRefreshGrace: oktaDefaultRefreshGrace} // unless the file says otherwise
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("parse fake IdP config %s: %w", path, err)
	}
	if len(cfg.Clients) == 0 {
		cfg.Clients = DemoConfig().Clients
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("fake IdP config %s: %w", path, err)
	}
	return cfg, nil
}

func (c Config) validate() error {
	seen := map[string]bool{}
	for i, u := range c.Users {
		if u.Subject == "" {
			return fmt.Errorf("user %d has no subject", i)
		}
		if seen[u.Subject] {
			return fmt.Errorf("user subject %q appears twice", u.Subject)
		}
		seen[u.Subject] = true
	}
	for i, cl := range c.Clients {
		if cl.ID == "" || cl.Secret == "" {
			return fmt.Errorf("client %d needs an id and a secret", i)
		}
		if len(cl.RedirectURIs) == 0 {
			return fmt.Errorf("client %q has no redirect_uris", cl.ID)
		}
	}
	switch c.SigningAlgorithm {
	case "", "RS256", "ES256":
	default:
		return errors.New("signing_algorithm must be RS256 or ES256")
	}
	if c.OktaRefreshGrace < 0 || c.OktaRefreshGrace > time.Minute {
		return fmt.Errorf("okta_refresh_grace must be between 0 and 60s (as at Okta), got %s", c.OktaRefreshGrace)
	}
	return nil
}
