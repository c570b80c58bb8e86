// Package rp lets a Go API (a relying party, or resource server) accept the
// access tokens Bridgekeeper issues.
//
// A [Verifier] reads the issuer's discovery document, fetches its JWKS and
// keeps it cached (honouring Cache-Control within bounds, refetching once when
// an unknown key ID shows up), then validates RFC 9068 JWT access tokens
// offline: signature with an algorithm the key allows, typ, iss, aud, exp,
// nbf and iat. [Verifier.Middleware] and [RequireScope] protect net/http and
// gorilla/mux handlers and answer with RFC 6750 errors.
//
//	v, err := rp.NewVerifier(ctx, "https://login.example.com", rp.WithAudience("https://api.example.com"))
//	...
//	mux.Handle("/api/checkout", v.Middleware(rp.RequireScope("checkout")(checkout)))
package rp
