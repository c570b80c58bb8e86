package rp

import (
	"net/http"
	"slices"
	"strings"
)

// ErrorInsufficientUserAuthentication is the error of a token whose user
// authentication is too weak for the resource (RFC 9470): the client
// should send the user through the authorization endpoint again with the
// acr_values the WWW-Authenticate header names.
const ErrorInsufficientUserAuthentication = "insufficient_user_authentication"

// ACR returns the token's acr claim (the authentication context class the
// user reached), "" when it has none. Bridgekeeper's values are
// urn:bridgekeeper:acr:pwd (one factor) and urn:bridgekeeper:acr:mfa (two).
func (c *Claims) ACR() string {
	var acr string
	if ok, err := c.Claim("acr", &acr); !ok || err != nil {
		return ""
	}
	return acr
}

// AMR returns the token's amr claim: the methods the user authenticated
// with (RFC 8176: "pwd", "otp", "mfa", …), nil when it has none.
func (c *Claims) AMR() []string {
	var amr []string
	if ok, err := c.Claim("amr", &amr); !ok || err != nil {
		return nil
	}
	return amr
}

// RequireACR returns a middleware, placed after Verifier.Middleware, that
// lets a request through only when its token's acr is one of accepted; a
// weaker token gets 401 insufficient_user_authentication with
// acr_values naming them (RFC 9470), so that the client can ask the user
// to step up.
func RequireACR(accepted ...string) func(http.Handler) http.Handler {
	return requireAuthn(strings.Join(accepted, " "), func(c *Claims) bool {
		return slices.Contains(accepted, c.ACR())
	})
}

// RequireAMR returns a middleware, placed after Verifier.Middleware, that
// lets a request through only when its token's amr lists every one of
// methods (e.g. RequireAMR("mfa")); otherwise it answers as RequireACR
// does, without acr_values.
func RequireAMR(methods ...string) func(http.Handler) http.Handler {
	return requireAuthn("", func(c *Claims) bool {
		amr := c.AMR()
		for _, m := range methods {
			if !slices.Contains(amr, m) {
				return false
			}
		}
		return true
	})
}

func requireAuthn(acrValues string, ok func(*Claims) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, found := r.Context().Value(contextKey{}).(*authInfo)
			if !found || info.claims == nil {
				writeError(w, http.StatusUnauthorized, DefaultRealm, "", "a bearer token is required", "")
				return
			}
			if ok(info.claims) {
				next.ServeHTTP(w, r)
				return
			}
			const desc = "a stronger user authentication is required"
			h := "Bearer realm=" + quote(info.realm) + ", error=" + quote(ErrorInsufficientUserAuthentication) +
				", error_description=" + quote(desc)
			if acrValues != "" {
				h += ", acr_values=" + quote(acrValues)
			}
			w.Header().Set("WWW-Authenticate", h)
			writeJSONError(w, http.StatusUnauthorized, ErrorInsufficientUserAuthentication, desc)
		})
	}
}
