package rp_test

import (
	"context"
	"encoding/json"
	"log"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/rp"
)

func Example() {
	v, err := rp.NewVerifier(context.Background(), "http://127.0.0.1:8080",
		rp.WithAudience("http://127.0.0.1:9090"))
	if err != nil {
		log.Fatal(err)
	}
	profile := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := rp.ClaimsFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": claims.Subject, "claims": claims})
	})
	checkout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"ordered"}`))
	})

	mux := http.NewServeMux()
	mux.Handle("/api/profile", v.Middleware(profile))
	mux.Handle("/api/checkout", v.Middleware(rp.RequireScope("checkout")(checkout)))
	log.Fatal(http.ListenAndServe("127.0.0.1:9090", mux))
}

func ExampleVerifier_Middleware_gorillaMux() {
	v, err := rp.NewVerifier(context.Background(), "http://127.0.0.1:8080",
		rp.WithAudience("http://127.0.0.1:9090"))
	if err != nil {
		log.Fatal(err)
	}
	checkout := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := rp.ClaimsFromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ordered", "sub": claims.Subject})
	})

	router := mux.NewRouter()
	api := router.PathPrefix("/api").Subrouter()
	api.Use(v.Middleware)
	api.Handle("/checkout", rp.RequireScope("checkout")(checkout))
	log.Fatal(http.ListenAndServe("127.0.0.1:9090", router))
}

func ExampleClaims_Claim() {
	var claims *rp.Claims // from Verify or ClaimsFromContext
	var email string
	if ok, err := claims.Claim("email", &email); err == nil && ok {
		log.Printf("token for %s", email)
	}
}
