package broker

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// cors answers CORS for the endpoints browsers call cross-origin. Origins
// are registered per client (AllowedOrigins, exact match):
//
//   - The public documents (discovery, JWKS) may be read by any registered
//     origin.
//   - Token, revocation and userinfo answers (perClient) may be read only
//     by an origin registered for the request's client: the client the
//     token or revocation request names (Basic user name or client_id),
//     the client the userinfo access token was issued to. An answer that
//     names no client (a missing or unknown bearer token, a request
//     without client credentials) may be read by any registered origin;
//     it says nothing about any client.
//   - A preflight (OPTIONS) carries no body and no credentials, so it
//     cannot tell the client: it is answered for every registered origin,
//     and the actual answer decides whether the page may read it.
//
// Preflight requests are answered here and never reach the endpoint.
func (s *Server) cors(perClient bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Add("Vary", "Origin")
			origin := r.Header.Get("Origin")
			if r.Method == http.MethodOptions {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if origin != "" && r.Header.Get("Access-Control-Request-Method") != "" && s.origins.allowed(r.Context(), origin, "") {
					h.Set("Access-Control-Allow-Origin", origin)
					h.Set("Access-Control-Allow-Methods", "GET, POST")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
					h.Set("Access-Control-Max-Age", "600")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			if !perClient {
				if s.origins.allowed(r.Context(), origin, "") {
					grantCORS(h, origin)
				}
				next.ServeHTTP(w, r)
				return
			}
			cw := &corsWriter{ResponseWriter: w, ctx: r.Context(), origins: s.origins, origin: origin}
			next.ServeHTTP(cw, r)
			cw.decide() // for an answer without a body
		})
	}
}

func grantCORS(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, ETag, DPoP-Nonce")
}

// corsWriter grants CORS to its origin when the answer starts, once the
// endpoint has said which client the request is for (corsClient).
type corsWriter struct {
	http.ResponseWriter
	ctx     context.Context
	origins *originCache
	origin  string
	client  string
	named   bool // client was set
	decided bool
}

func (w *corsWriter) decide() {
	if w.decided {
		return
	}
	w.decided = true
	client := ""
	if w.named {
		client = w.client
		if client == "" {
			return // named, but no client: nobody's origin
		}
	}
	if w.origins.allowed(w.ctx, w.origin, client) {
		grantCORS(w.Header(), w.origin)
	}
}

func (w *corsWriter) WriteHeader(code int) {
	w.decide()
	w.ResponseWriter.WriteHeader(code)
}

func (w *corsWriter) Write(b []byte) (int, error) {
	w.decide()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *corsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// corsClient tells the CORS layer which client the request is for: only
// an origin registered for that client may read the answer. Call it
// before the answer is written; a writer outside the per-client CORS
// layer ignores it.
func corsClient(w http.ResponseWriter, clientID string) {
	if cw, ok := w.(*corsWriter); ok && !cw.decided {
		cw.client, cw.named = clientID, true
	}
}

// requestClientID is the client a token or revocation request names: the
// Basic user name (form-decoded, RFC 6749 §2.3.1) or the client_id form
// field ("" for none). Call it after the form was parsed.
func requestClientID(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
		return ""
	}
	return r.PostForm.Get("client_id")
}

// originCache holds the allowed origins of every client in memory,
// reloaded from the clients at most once per ttl, so CORS costs no
// database query per request.
type originCache struct {
	store *storage.Store
	ttl   time.Duration

	mu       sync.Mutex
	origins  map[string]map[string]struct{} // origin → ids of the clients that registered it
	loadedAt time.Time
}

func newOriginCache(store *storage.Store, ttl time.Duration) *originCache {
	return &originCache{store: store, ttl: ttl}
}

// allowed reports whether origin is registered for client, or for any
// client when client is "".
func (c *originCache) allowed(ctx context.Context, origin, client string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	age := time.Since(c.loadedAt)
	if c.origins == nil || age > c.ttl {
		c.load(ctx)
	} else if !c.has(origin, client) && age > time.Second {
		c.load(ctx) // a client may have been added or changed since
	}
	return c.has(origin, client)
}

func (c *originCache) has(origin, client string) bool {
	clients, ok := c.origins[origin]
	if !ok || client == "" {
		return ok
	}
	_, ok = clients[client]
	return ok
}

// load rebuilds the map from the clients; on error it keeps the previous
// map (if any) and tries again later.
func (c *originCache) load(ctx context.Context) {
	c.loadedAt = time.Now()
	clients, err := c.store.ListClients(ctx)
	if err != nil {
		return
	}
	m := make(map[string]map[string]struct{})
	for _, cl := range clients {
		for _, o := range cl.AllowedOrigins {
			if m[o] == nil {
				m[o] = make(map[string]struct{})
			}
			m[o][cl.ID] = struct{}{}
		}
	}
	c.origins = m
}
