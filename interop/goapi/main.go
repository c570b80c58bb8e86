// Command goapi is docs/rp.md's Go API: an API protected by Bridgekeeper
// access tokens, bearer or DPoP-bound (RFC 9449), verified with package rp.
//
//	ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9090 go run ./interop/goapi
//
// GET /api/profile needs any valid token; GET|POST /api/checkout needs scope
// "checkout". LISTEN sets the address (default 127.0.0.1:9090; port 0 picks
// one); the first line on stdout is "listening on HOST:PORT". PUBLIC_URL is
// the API's URL as clients call it, which DPoP proofs name (default
// http://LISTEN).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/bridgekeeper/bridgekeeper/rp"
)

func main() {
	issuer, audience := os.Getenv("ISSUER"), os.Getenv("AUDIENCE")
	if issuer == "" || audience == "" {
		log.Fatal("set ISSUER and AUDIENCE")
	}
	listen := os.Getenv("LISTEN")
	if listen == "" {
		listen = "127.0.0.1:9090"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Fatal(err)
	}
	publicURL := os.Getenv("PUBLIC_URL")
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	// Reads discovery (which must name this issuer) and the JWKS; the keys
	// are cached, refreshed as the JWKS's max-age says, and fetched again
	// when a token names a key not in the cache. DPoP proofs must name
	// publicURL; each is accepted once (an in-memory replay cache: give
	// replicas a shared one with rp.WithReplayCache).
	v, err := rp.NewVerifier(ctx, issuer, rp.WithAudience(audience), rp.WithPublicURL(publicURL))
	if err != nil {
		log.Fatal(err)
	}

	profile := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := rp.ClaimsFromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": claims.Subject, "scopes": claims.Scopes, "claims": claims})
	})
	checkout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := rp.ClaimsFromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ordered", "sub": claims.Subject})
	})

	mux := http.NewServeMux()
	mux.Handle("/api/profile", v.Middleware(profile))                                // 401/503 answered by rp
	mux.Handle("/api/checkout", v.Middleware(rp.RequireScope("checkout")(checkout))) // 403 without the scope

	fmt.Println("listening on", ln.Addr())
	server := &http.Server{Handler: mux}
	go func() {
		<-ctx.Done()
		_ = server.Shutdown(context.Background())
	}()
	if err := server.Serve(ln); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
