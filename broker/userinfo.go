package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// handleUserinfo is the OpenID Connect userinfo endpoint (GET or POST with a
// Bearer access token, RFC 6750, or a DPoP-bound one with its proof, RFC
// 9449). It returns sub and the profile and e-mail
// claims the token's scopes allow.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := bearerToken(w, r)
	viaDPoP := false
	if t := dpopAuthorization(r); t != "" {
		token, viaDPoP = t, true
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bridgekeeper"`)
		w.Header().Add("WWW-Authenticate", dpopChallenge("", ""))
		writeBearerError(w, http.StatusUnauthorized, "", "")
		return
	}
	use, ar, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, newSession())
	if err != nil || use != fosite.AccessToken {
		if viaDPoP {
			s.writeDPoPChallenge(w, "invalid_token", "The access token is invalid, expired or revoked.")
			return
		}
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return
	}
	// Only the token's client's origins may read what follows.
	clientID := ""
	if c := ar.GetClient(); c != nil {
		clientID = c.GetID()
	}
	corsClient(w, clientID)
	if !s.resourceProof(w, r, pathUserinfo, token, viaDPoP, ar) {
		return
	}
	if !ar.GetGrantedScopes().Has("openid") {
		writeBearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	user, err := s.cfg.Store.GetUser(ctx, ar.GetSession().GetSubject())
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (!user.Active || user.Disabled)) {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "The user of this access token no longer exists or is disabled.")
		return
	}
	if err != nil {
		s.log.ErrorContext(ctx, "userinfo: load user", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	claims := idTokenClaims(user, ar.GetGrantedScopes())
	claims["sub"] = user.ID
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(claims)
}

// bearerToken returns the RFC 6750 bearer token of the Authorization header
// or, for a form-encoded POST, of the access_token form field.
func bearerToken(w http.ResponseWriter, r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err == nil {
			return r.PostForm.Get("access_token")
		}
	}
	return ""
}

// writeBearerError writes an RFC 6750 error with its WWW-Authenticate header.
func writeBearerError(w http.ResponseWriter, status int, code, description string) {
	if code != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="bridgekeeper", error=%q, error_description=%q`, code, description))
	}
	w.Header().Set("Cache-Control", "no-store")
	if code == "" {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
