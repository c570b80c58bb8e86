package rp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type contextKey struct{}

// authInfo is what Middleware leaves in the request context.
type authInfo struct {
	claims *Claims
	realm  string
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
	return context.WithValue(ctx, contextKey{}, &authInfo{claims: claims, realm: DefaultRealm})
}

// Middleware lets a request through only with a valid bearer token in its
// Authorization header, and puts the token's claims in the request context.
// Otherwise it answers as RFC 6750 says: 401 with WWW-Authenticate (and
// error="invalid_token" when a token was sent), 400 for a malformed header,
// 503 when the issuer's keys cannot be fetched. It is a gorilla/mux
// middleware too: router.Use(v.Middleware).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present := bearerToken(r)
		switch {
		case !present:
			writeError(w, http.StatusUnauthorized, v.realm, "", "a bearer token is required", "")
			return
		case token == "":
			writeError(w, http.StatusBadRequest, v.realm, "invalid_request", "malformed Authorization header", "")
			return
		}
		claims, err := v.Verify(r.Context(), token)
		if err != nil {
			if errors.Is(err, ErrInvalidToken) {
				v.logger.InfoContext(r.Context(), "rp: token refused", "error", err)
				writeError(w, http.StatusUnauthorized, v.realm, "invalid_token", describe(err), "")
				return
			}
			if r.Context().Err() == nil { // not merely a client that went away
				v.logger.ErrorContext(r.Context(), "rp: cannot verify token", "error", err)
			}
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "signing keys unavailable")
			return
		}
		ctx := context.WithValue(r.Context(), contextKey{}, &authInfo{claims: claims, realm: v.realm})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
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
				writeError(w, http.StatusUnauthorized, DefaultRealm, "", "a bearer token is required", "")
				return
			}
			if !info.claims.HasScopes(scopes...) {
				writeError(w, http.StatusForbidden, info.realm, "insufficient_scope",
					"the token lacks scope "+needed, needed)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bearerToken returns the token of an "Authorization: Bearer" header. present
// is false when there is no such header (or another scheme); the token is
// empty when the header is malformed.
func bearerToken(r *http.Request) (token string, present bool) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", false
	}
	scheme, rest, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	if len(values) > 1 {
		return "", true
	}
	token = strings.TrimSpace(rest)
	if strings.ContainsAny(token, " \t") {
		return "", true
	}
	return token, true
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

func writeError(w http.ResponseWriter, status int, realm, code, description, scope string) {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
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
	w.Header().Set("WWW-Authenticate", b.String())
	if code == "" {
		code = "unauthorized"
	}
	writeJSONError(w, status, code, description)
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
