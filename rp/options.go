package rp

import (
	"log/slog"

	"github.com/go-jose/go-jose/v4"
	"net/http"
	"strings"
	"time"
)

// Defaults for the options below.
const (
	DefaultLeeway          = 30 * time.Second
	DefaultCacheFloor      = time.Minute
	DefaultCacheCeiling    = time.Hour
	DefaultCacheTTL        = 5 * time.Minute
	DefaultRefetchInterval = 10 * time.Second
	DefaultRealm           = "api"
)

// An Option configures a Verifier.
type Option func(*config)

type config struct {
	audience        string
	anyAudience     bool
	types           []string // accepted typ values, lower case; nil: any
	leeway          time.Duration
	cacheFloor      time.Duration
	cacheCeiling    time.Duration
	cacheTTL        time.Duration
	refetchInterval time.Duration
	jwksURL         string
	client          *http.Client
	logger          *slog.Logger
	now             func() time.Time
	realm           string

	dpopRequired bool
	dpopClients  []string
	proofAlgs    []jose.SignatureAlgorithm
	proofMaxAge  time.Duration
	proofLeeway  time.Duration
	replay       ReplayCache
	nonceSecret  []byte
	noncePeriod  time.Duration
	publicURL    string
}

func defaultConfig() config {
	return config{
		types:           []string{"at+jwt"},
		leeway:          DefaultLeeway,
		cacheFloor:      DefaultCacheFloor,
		cacheCeiling:    DefaultCacheCeiling,
		cacheTTL:        DefaultCacheTTL,
		refetchInterval: DefaultRefetchInterval,
		client:          &http.Client{Timeout: 10 * time.Second},
		logger:          slog.Default(),
		now:             time.Now,
		realm:           DefaultRealm,
	}
}

// WithAudience makes the verifier accept only tokens whose aud claim contains
// audience (the identifier of this API). A verifier needs either this or
// WithAnyAudience.
func WithAudience(audience string) Option {
	return func(c *config) { c.audience = audience }
}

// WithAnyAudience turns off the audience check: any token of the issuer is
// accepted whatever API it was minted for. Prefer WithAudience.
func WithAnyAudience() Option {
	return func(c *config) { c.anyAudience = true }
}

// WithTokenTypes sets the accepted values of the JOSE "typ" header, compared
// without case and with or without the "application/" prefix. The default is
// "at+jwt" (RFC 9068 access tokens). With no argument, any typ, or none, is
// accepted — for ID tokens, which carry "JWT" or no typ at all.
func WithTokenTypes(types ...string) Option {
	return func(c *config) {
		if len(types) == 0 {
			c.types = nil
			return
		}
		c.types = make([]string, len(types))
		for i, t := range types {
			c.types[i] = normalizeType(t)
		}
	}
}

// WithLeeway sets the clock skew tolerated on exp, nbf and iat
// (DefaultLeeway).
func WithLeeway(d time.Duration) Option {
	return func(c *config) { c.leeway = d }
}

// WithCacheBounds bounds how long a fetched JWKS is used before it is fetched
// again: the Cache-Control max-age of the JWKS response, clamped to
// [floor, ceiling] (DefaultCacheFloor, DefaultCacheCeiling).
func WithCacheBounds(floor, ceiling time.Duration) Option {
	return func(c *config) { c.cacheFloor, c.cacheCeiling = floor, ceiling }
}

// WithRefetchInterval sets the least time between two JWKS fetches caused by
// tokens naming an unknown key (DefaultRefetchInterval), so that garbage key
// IDs cannot make the verifier hammer the issuer. A token naming an unknown
// key less than d after the last fetch does not wait: it is refused at once
// with ErrUnknownKey (401 from the middleware); the first such token after d
// has passed fetches the JWKS again. A key the issuer published before the
// last fetch is never affected: only a key it started signing with moments
// after publishing it (an emergency rotation) can be refused for up to d.
func WithRefetchInterval(d time.Duration) Option {
	return func(c *config) { c.refetchInterval = d }
}

// WithJWKSURL skips discovery and fetches keys from url.
func WithJWKSURL(url string) Option {
	return func(c *config) { c.jwksURL = url }
}

// WithHTTPClient sets the client used for discovery and JWKS requests.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) { c.client = client }
}

// WithLogger sets the logger for key fetches and refused tokens.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) { c.logger = logger }
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithRealm sets the realm named in WWW-Authenticate answers (DefaultRealm).
func WithRealm(realm string) Option {
	return func(c *config) { c.realm = realm }
}

func normalizeType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}
