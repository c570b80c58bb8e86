package main

import (
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/rp"
)

// newHandler returns the API: /api/health (open), /api/profile (any valid
// token), /api/checkout (scope "checkout"), with CORS for allowedOrigins.
func newHandler(v *rp.Verifier, allowedOrigins []string, logger *slog.Logger) http.Handler {
	router := mux.NewRouter()
	router.HandleFunc("/api/health", health).Methods(http.MethodGet)

	protected := router.PathPrefix("/api").Subrouter()
	protected.Use(v.Middleware)
	protected.HandleFunc("/profile", profile).Methods(http.MethodGet)
	protected.Handle("/checkout", rp.RequireScope("checkout")(http.HandlerFunc(checkout))).
		Methods(http.MethodGet, http.MethodPost)

	return accessLog(logger, cors(allowedOrigins, router))
}

func health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// profile answers with the claims the token carried.
func profile(w http.ResponseWriter, r *http.Request) {
	claims, _ := rp.ClaimsFromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"sub":    claims.Subject,
		"scopes": claims.Scopes,
		"claims": claims,
	})
}

// checkout pretends to place an order.
func checkout(w http.ResponseWriter, r *http.Request) {
	claims, _ := rp.ClaimsFromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"status":   "ordered",
		"order_id": "order-" + strings.ToLower(rand.Text()[:10]),
		"sub":      claims.Subject,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cors lets the listed browser origins call the API with a bearer token or
// a DPoP-bound one and its proof (the DPoP request header; the DPoP-Nonce
// answer header). Preflights are answered here, before authentication,
// since browsers send them without the Authorization header.
func cors(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		ok := slices.Contains(allowed, origin) || slices.Contains(allowed, "*")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !ok {
			if preflight {
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r) // no CORS headers: the browser withholds the answer
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce")
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", time.Since(start))
	})
}
