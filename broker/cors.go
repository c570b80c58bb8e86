package broker

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// cors answers CORS for the endpoints browsers call cross-origin (token,
// revocation, userinfo, discovery, JWKS): only origins registered in some
// client's AllowedOrigins (exact match) get Access-Control-Allow-Origin.
// Preflight requests are answered here and never reach the endpoint.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.origins.allowed(r.Context(), origin)
		if r.Method == http.MethodOptions {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if allowed && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "GET, POST")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, ETag")
		}
		next.ServeHTTP(w, r)
	})
}

// originCache holds the set of allowed origins in memory, reloaded from the
// clients at most once per ttl, so CORS costs no database query per request.
type originCache struct {
	store *storage.Store
	ttl   time.Duration

	mu       sync.Mutex
	origins  map[string]struct{}
	loadedAt time.Time
}

func newOriginCache(store *storage.Store, ttl time.Duration) *originCache {
	return &originCache{store: store, ttl: ttl}
}

func (c *originCache) allowed(ctx context.Context, origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	age := time.Since(c.loadedAt)
	if c.origins == nil || age > c.ttl {
		c.load(ctx)
	} else if _, ok := c.origins[origin]; !ok && age > time.Second {
		c.load(ctx) // a client may have been added since
	}
	_, ok := c.origins[origin]
	return ok
}

// load rebuilds the set from the clients; on error it keeps the previous
// set (if any) and tries again later.
func (c *originCache) load(ctx context.Context) {
	c.loadedAt = time.Now()
	clients, err := c.store.ListClients(ctx)
	if err != nil {
		return
	}
	set := make(map[string]struct{})
	for _, cl := range clients {
		for _, o := range cl.AllowedOrigins {
			set[o] = struct{}{}
		}
	}
	c.origins = set
}
