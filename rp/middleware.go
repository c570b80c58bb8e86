package rp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
)

type contextKey struct{}

// authInfo is what Middleware leaves in the request context.
type authInfo struct {
	claims *Claims
	realm  string
	scheme string // "Bearer" or "DPoP": the scheme of later challenges
	algs   string // DPoP proof algorithms, for a DPoP challenge
}

// ClaimsFromContext returns the claims Middleware verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	info, ok := ctx.Value(contextKey{}).(*authInfo)
	if !ok || info.claims == nil {
		return nil, false
	}
	return info.claims, true
}

// ContextWithClaims returns a context carrying claims, as Middleware does —
// for tests of handlers that read ClaimsFromContext.
func ContextWithClaims(ctx context.Context, claims *Claims) context.Context {
	return context.WithValue(ctx, contextKey{}, &authInfo{claims: claims, realm: DefaultRealm, scheme: schemeBearer})
}

// Authorization schemes.
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// Middleware lets a request through only with a valid access token, and
// puts the token's claims in the request context. A bearer token comes as
// "Authorization: Bearer <token>" (RFC 6750); a DPoP-bound one as
// "Authorization: DPoP <token>" with its proof in a DPoP header (RFC 9449),
// and is refused as a bearer token. Otherwise it answers as the RFCs say:
// 401 with WWW-Authenticate (a Bearer and a DPoP challenge when no token
// was sent; error="invalid_token", "invalid_dpop_proof" or
// "use_dpop_nonce" for a bad one), 400 for a malformed header, 503 when
// the issuer's keys or the replay cache cannot be reached. It is a
// gorilla/mux middleware too: router.Use(v.Middleware).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, present := credentials(r)
		switch {
		case !present:
			v.writeChallenges(w)
			return
		case token == "":
			v.writeError(w, http.StatusBadRequest, scheme, "invalid_request", "malformed Authorization header", "")
			return
		}
		var claims *Claims
		var err error
		if scheme == schemeBearer {
			claims, err = v.Verify(r.Context(), token)
		} else {
			if v.dpop.nonces != nil {
				w.Header().Set(dpop.NonceHeader, v.dpop.nonces.Current())
			}
			claims, err = v.verifyDPoPRequest(r.Context(), token, r)
		}
		if err != nil {
			v.refuse(w, r, scheme, err)
			return
		}
		ctx := context.WithValue(r.Context(), contextKey{}, &authInfo{claims: claims, realm: v.realm, scheme: scheme, algs: v.dpop.algs})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refuse answers a request whose token or proof err refused.
func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, scheme string, err error) {
	switch {
	case errors.Is(err, ErrInvalidToken):
		if errors.Is(err, ErrTokenBound) || errors.Is(err, ErrNotBound) {
			scheme = schemeDPoP // what the client must use instead
		}
		v.logger.InfoContext(r.Context(), "rp: token refused", "error", err)
		v.writeError(w, http.StatusUnauthorized, scheme, "invalid_token", describeDPoP(err), "")
	case errors.Is(err, ErrInvalidProof):
		v.logger.InfoContext(r.Context(), "rp: DPoP proof refused", "error", err)
		v.writeError(w, http.StatusUnauthorized, schemeDPoP, "invalid_dpop_proof", describeDPoP(err), "")
	case errors.Is(err, ErrUseNonce):
		v.writeError(w, http.StatusUnauthorized, schemeDPoP, "use_dpop_nonce", "a DPoP proof with the nonce in DPoP-Nonce is required", "")
	default:
		if r.Context().Err() == nil { // not merely a client that went away
			v.logger.ErrorContext(r.Context(), "rp: cannot verify token", "error", err)
		}
		description := "signing keys unavailable"
		if !errors.Is(err, ErrKeysUnavailable) {
			description = "DPoP replay cache unavailable"
			w.Header().Set("Retry-After", "5")
		}
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", description)
	}
}

// writeChallenges answers a request without credentials: 401, offering
// both schemes.
func (v *Verifier) writeChallenges(w http.ResponseWriter) {
	w.Header().Add("WWW-Authenticate", challenge(schemeBearer, v.realm, "", "", "", ""))
	w.Header().Add("WWW-Authenticate", challenge(schemeDPoP, v.realm, v.dpop.algs, "", "", ""))
	writeJSONError(w, http.StatusUnauthorized, "unauthorized", "an access token is required")
}

func (v *Verifier) writeError(w http.ResponseWriter, status int, scheme, code, description, scope string) {
	writeError(w, status, scheme, v.realm, v.dpop.algs, code, description, scope)
}

// RequireScope returns a middleware, placed after Verifier.Middleware, that
// lets a request through only when its token was granted every one of
// scopes; otherwise it answers 403 insufficient_scope naming them.
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	needed := strings.Join(scopes, " ")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, ok := r.Context().Value(contextKey{}).(*authInfo)
			if !ok || info.claims == nil {
				writeError(w, http.StatusUnauthorized, schemeBearer, DefaultRealm, "", "", "an access token is required", "")
				return
			}
			if !info.claims.HasScopes(scopes...) {
				writeError(w, http.StatusForbidden, info.scheme, info.realm, info.algs, "insufficient_scope",
					"the token lacks scope "+needed, needed)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// credentials returns the scheme and token of an "Authorization: Bearer"
// or "Authorization: DPoP" header. present is false when there is no such
// header (or another scheme); the token is empty when the header is
// malformed.
func credentials(r *http.Request) (scheme, token string, present bool) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", "", false
	}
	name, rest, _ := strings.Cut(values[0], " ")
	switch {
	case strings.EqualFold(name, schemeBearer):
		scheme = schemeBearer
	case strings.EqualFold(name, schemeDPoP):
		scheme = schemeDPoP
	default:
		return "", "", false
	}
	if len(values) > 1 {
		return scheme, "", true
	}
	token = strings.TrimSpace(rest)
	if strings.ContainsAny(token, " \t") {
		return scheme, "", true
	}
	return scheme, token, true
}

// describe turns a verification error into a short error_description that
// tells the client what is wrong without echoing token contents.
func describe(err error) string {
	for _, e := range []error{ErrExpired, ErrNotYetValid, ErrIssuedInFuture, ErrAudience, ErrIssuer,
		ErrTokenType, ErrUnknownKey, ErrAlgorithm, ErrSignature, ErrMalformed} {
		if errors.Is(err, e) {
			return strings.TrimPrefix(e.Error(), ErrInvalidToken.Error()+": ")
		}
	}
	return "invalid token"
}

func writeError(w http.ResponseWriter, status int, scheme, realm, algs, code, description, scope string) {
	w.Header().Set("WWW-Authenticate", challenge(scheme, realm, algs, code, description, scope))
	if code == "" {
		code = "unauthorized"
	}
	writeJSONError(w, status, code, description)
}

// challenge is one WWW-Authenticate challenge: scheme Bearer (RFC 6750) or
// DPoP (RFC 9449, with the proof algorithms accepted).
func challenge(scheme, realm, algs, code, description, scope string) string {
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(" realm=")
	b.WriteString(quote(realm))
	if scheme == schemeDPoP && algs != "" {
		b.WriteString(", algs=")
		b.WriteString(quote(algs))
	}
	if code != "" {
		b.WriteString(", error=")
		b.WriteString(quote(code))
		b.WriteString(", error_description=")
		b.WriteString(quote(description))
	}
	if scope != "" {
		b.WriteString(", scope=")
		b.WriteString(quote(scope))
	}
	return b.String()
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}{code, description})
}

// quote makes a quoted-string of s, keeping only the characters RFC 6750
// allows in its attributes (printable ASCII but '"' and '\').
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
