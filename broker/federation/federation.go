// Package federation puts upstream identity providers on the broker's login
// page: it launches the configured connector plugins, sends the browser to
// the upstream (GET /connect/{connector}), takes the upstream's answer
// (GET or POST /callback/{connector}), links the upstream identity to a
// broker user and completes the pending login. It also re-checks federated
// users upstream on the broker's refresh grant (Refresh).
package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/config"
	"github.com/bridgekeeper/bridgekeeper/internal/cookie"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Routes, relative to the issuer.
const (
	pathConnect  = "/connect/"
	pathCallback = "/callback/"
	pathLink     = "/link/"
	pathLogin    = "/login"
)

// AMR is the authentication method reference of a federated login.
const AMR = "fed"

// Config configures federation. Store, Issuer and DataKey are required.
type Config struct {
	Store  Store // *storage.Store fits
	Logger *slog.Logger
	// Issuer is the broker's issuer URL (the callback URLs are under it).
	Issuer string
	// LinkByEmail links a first login through a connector to the existing
	// user with the same e-mail address, when both the upstream and the
	// broker say the address is verified: at once when the connector is
	// trusted for e-mail (config.Connector.TrustEmail) and the user has no
	// password; after the user proves control of the account (its
	// password) when it has one. Off: every new upstream identity gets a
	// user of its own.
	LinkByEmail bool
	// DataKey is the 32-byte AES-256-GCM key that encrypts connector data
	// (upstream tokens) at rest: derive it with secret.PurposeConnectorData.
	DataKey []byte
	// Connectors are the upstream providers, each served by a plugin.
	Connectors []config.Connector
	// RecheckInterval is how old a federated browser session's last
	// upstream check may be before the broker reuses the session silently
	// (prompt=none, or any request it answers from the session): an older
	// one is re-checked upstream first (connectors.RefreshConnector). Zero
	// means DefaultRecheckInterval; a negative value re-checks on every
	// silent reuse.
	RecheckInterval time.Duration
}

// Broker is what the connector routes use of the broker they are mounted
// on (broker.Server fits): the pending login of the browser, its upstream
// state, the password check of a link, completing the login, and the
// broker's message page.
type Broker interface {
	PendingLogin(r *http.Request, loginID string) (*storage.PendingLogin, error)
	RecordUpstreamState(r *http.Request, loginID, connectorID, stateHash string, connectorState []byte) error
	ClaimUpstreamState(r *http.Request, loginID, connectorID, stateHash string) (*storage.PendingLogin, error)
	CheckPassword(r *http.Request, u *storage.User, pw string) (bool, time.Duration, error)
	CompleteFederatedLogin(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin, user *storage.User, up broker.UpstreamLogin, also ...func(ctx context.Context) error)
	RenderMessage(w http.ResponseWriter, r *http.Request, status int, title, message, detail string, links ...broker.PageLink)
	StartLinks() []broker.PageLink
}

// DefaultRecheckInterval is Config.RecheckInterval's default.
const DefaultRecheckInterval = 5 * time.Minute

// connector is one launched upstream.
type connector struct {
	id, name string
	// conn is the connector; a plugin's (plugins.Plugin.Connector) leads
	// to its process (plugin).
	conn connectors.Connector
	// trustEmail: the provider is trusted to verify e-mail addresses
	// (config.Connector.TrustEmail).
	trustEmail bool
}

// Federation serves the connector routes of one broker.
type Federation struct {
	cfg        Config
	log        *slog.Logger
	pages      *pagekit.Pages
	cookies    cookie.Policy
	basePath   string // the issuer's path
	connectors map[string]*connector
	order      []string
	broker     Broker // set by Mount

	refreshLocks keyedMutex
	// unsaved holds upstream refresh results whose save failed.
	unsaved unsavedData
}

// connectorID is what a connector id may look like: it is a URL path
// segment and a cookie path.
var connectorID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// New launches every configured connector plugin. It fails, stopping what
// it launched, when a plugin is refused (checksum mismatch), does not start
// or refuses its configuration. The broker takes the rest at its
// construction (broker.Config): LoginOptions, SessionCheck, Refresh and
// Mount.
func New(ctx context.Context, cfg Config) (*Federation, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("federation: store is required")
	case cfg.Issuer == "":
		return nil, errors.New("federation: issuer is required")
	case len(cfg.DataKey) != 32:
		return nil, errors.New("federation: a 32-byte connector data key is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RecheckInterval == 0 {
		cfg.RecheckInterval = DefaultRecheckInterval
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || (issuer.Scheme != "http" && issuer.Scheme != "https") || issuer.Host == "" {
		return nil, fmt.Errorf("federation: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	f := &Federation{
		cfg:        cfg,
		log:        cfg.Logger,
		cookies:    cookie.For(cfg.Issuer),
		basePath:   strings.TrimRight(issuer.Path, "/"),
		connectors: map[string]*connector{},
	}
	f.sealStored(ctx)
	for _, c := range cfg.Connectors {
		if err := f.launch(ctx, c); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("federation: %w", err)
		}
	}
	return f, nil
}

// LoginOptions are the login page's "Continue with …" buttons, one per
// connector in the configuration's order (broker.Config.LoginOptions).
func (f *Federation) LoginOptions() []broker.LoginOption {
	var opts []broker.LoginOption
	for _, id := range f.order {
		c := f.connectors[id]
		opts = append(opts, broker.LoginOption{
			ID:    c.id,
			Label: c.name,
			URL:   func(loginID string) string { return f.connectURL(c.id, loginID) },
			Start: f.startLogin(c),
		})
	}
	return opts
}

// Mount adds the connector routes (connect, callback, link) to r and
// serves them with b; it is a broker.Mount (broker.Config.Mounts), which
// the broker calls once while it is built.
func (f *Federation) Mount(r *mux.Router, b *broker.Server) error {
	pages, err := loadPages(b)
	if err != nil {
		return fmt.Errorf("federation: %w", err)
	}
	f.broker, f.pages = b, pages
	r.HandleFunc(pathConnect+"{connector}", f.handleConnect).Methods(http.MethodGet)
	r.HandleFunc(pathCallback+"{connector}", f.handleCallback).Methods(http.MethodGet, http.MethodPost)
	r.Handle(pathLink+"{connector}", http.NewCrossOriginProtection().Handler(http.HandlerFunc(f.handleLink))).Methods(http.MethodPost)
	return nil
}

// launch starts one connector's plugin.
func (f *Federation) launch(ctx context.Context, c config.Connector) error {
	switch {
	case !connectorID.MatchString(c.ID):
		return fmt.Errorf("connector id %q: use letters, digits, '.', '_' and '-' (it is a URL path segment)", c.ID)
	case c.ID == "local":
		return errors.New(`connector id "local" is reserved for the broker's own accounts`)
	case f.connectors[c.ID] != nil:
		return fmt.Errorf("connector id %q appears twice", c.ID)
	case c.Path == "":
		return fmt.Errorf("connector %q: no plugin path", c.ID)
	}
	conf := c.Config
	if conf == nil {
		conf = map[string]any{}
	}
	raw, err := json.Marshal(conf)
	if err != nil {
		return fmt.Errorf("connector %q: config: %w", c.ID, err)
	}
	p, err := plugins.Launch(ctx, plugins.Config{
		ID:              c.ID,
		Path:            c.Path,
		Args:            c.Args,
		Env:             c.Env,
		SHA256:          c.SHA256,
		Config:          raw,
		CallTimeout:     c.CallTimeout,
		StartTimeout:    c.StartTimeout,
		DisableAutoMTLS: !c.MTLS(),
	}, f.log)
	if err != nil {
		return err
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	f.connectors[c.ID] = &connector{id: c.ID, name: name, conn: p.Connector(), trustEmail: c.TrustEmail}
	f.order = append(f.order, c.ID)
	return nil
}

// Close stops every connector plugin.
func (f *Federation) Close() error {
	var errs []error
	for _, id := range f.order {
		if err := f.connectors[id].plugin().Close(); err != nil {
			errs = append(errs, fmt.Errorf("connector %q: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// Healthy checks every connector plugin (relaunching one whose process
// exited), for the broker's health endpoint.
func (f *Federation) Healthy(ctx context.Context) error {
	var errs []error
	for _, id := range f.order {
		if err := f.connectors[id].plugin().Healthy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Plugin returns the plugin of a connector (nil for an unknown id), for
// health and metrics.
func (f *Federation) Plugin(id string) *plugins.Plugin {
	if c := f.connectors[id]; c != nil {
		return c.plugin()
	}
	return nil
}

// plugin is the process supervisor behind c's connector: every connector
// New launches has one.
func (c *connector) plugin() *plugins.Plugin {
	if p, ok := c.conn.(interface{ Plugin() *plugins.Plugin }); ok {
		return p.Plugin()
	}
	return nil
}

func (f *Federation) connectURL(id, loginID string) string {
	return f.cfg.Issuer + pathConnect + url.PathEscape(id) + "?login=" + url.QueryEscape(loginID)
}

func (f *Federation) callbackURL(id string) string {
	return f.cfg.Issuer + pathCallback + url.PathEscape(id)
}

func (f *Federation) linkURL(id string) string {
	return f.cfg.Issuer + pathLink + url.PathEscape(id)
}

func (f *Federation) loginPageURL(loginID string) string {
	return f.cfg.Issuer + pathLogin + "?login=" + url.QueryEscape(loginID)
}

// now is the time of storage rows, second precision like the broker's.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }
