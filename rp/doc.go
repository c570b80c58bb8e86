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
// DPoP-bound tokens (RFC 9449, claim cnf.jkt) are accepted only as
// "Authorization: DPoP" with a fresh proof from their key in the DPoP
// header ([Verifier.VerifyDPoP]), never as bearer tokens; each proof is
// accepted once ([ReplayCache]; share one between replicas with
// [WithReplayCache]); [WithDPoPRequiredFor] makes DPoP mandatory for some
// clients, [WithDPoPNonce] adds server nonces, and [WithPublicURL] names
// the URL proofs must be for. Refusals use RFC 9449's invalid_token,
// invalid_dpop_proof and use_dpop_nonce with a DPoP challenge.
//
//	v, err := rp.NewVerifier(ctx, "https://login.example.com", rp.WithAudience("https://api.example.com"),
//		rp.WithPublicURL("https://api.example.com"))
//	...
//	mux.Handle("/api/checkout", v.Middleware(rp.RequireScope("checkout")(checkout)))
package rp
