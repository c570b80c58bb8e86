package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// handleToken is the token endpoint: authorization_code (+PKCE),
// refresh_token (rotation, reuse revokes the grant) and client_credentials.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	outcome := "ok"
	if obs := s.cfg.GrantObserver; obs != nil {
		defer func() { obs(r.PostForm.Get("grant_type"), outcome) }()
	}
	ctx := r.Context()
	var ar fosite.AccessRequester
	fail := func(err error) {
		if down := outage(err); down != nil {
			err = down
		}
		err = replayAnswer(dpopReplayAnswer(err))
		outcome = fosite.ErrorToRFC6749Error(err).ErrorField
		s.logGrantError(ctx, "token", err)
		if ar == nil {
			ar = fosite.NewAccessRequest(newSession())
		}
		s.provider.WriteAccessError(ctx, w, ar, err)
	}

	if err := r.ParseMultipartForm(1 << 20); err == nil || errors.Is(err, http.ErrNotMultipart) {
		if id := requestClientID(r); id != "" {
			corsClient(w, id)
		}
		switch gt := r.PostForm.Get("grant_type"); gt {
		case "", "authorization_code", "refresh_token", "client_credentials":
		default:
			fail(fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", gt))
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "" && noClientCredentials(r) {
			outcome = "invalid_client"
			writeNoClient(w)
			return
		}
	}
	ctx, err := s.tokenProof(ctx, w, r)
	if err != nil {
		fail(err)
		return
	}
	sess := newSession()
	// The request's checks record their writes (the PKCE data they spend)
	// in the unit, and so does the proof's jti; they land with the grant,
	// in one transaction.
	ctx, endUnit := s.tokens.WithUnit(ctx)
	defer endUnit()
	s.claimProof(ctx)
	ar, err = s.provider.NewAccessRequest(ctx, r, sess)
	if err != nil && fosite.ErrorToRFC6749Error(err).CodeField < http.StatusInternalServerError {
		// A refused request (a wrong code_verifier, say) still spends what
		// the checks spent, so a stolen code gets one guess.
		if werr := s.tokens.Run(ctx, nil); werr != nil {
			s.log.ErrorContext(ctx, "token request: spend the refused request's PKCE data", "err", werr)
		}
	}
	if err != nil && ar != nil && ar.GetClient() != nil && ar.GetClient().IsPublic() &&
		ar.GetGrantTypes().ExactOne("client_credentials") && errors.Is(err, fosite.ErrInvalidGrant) {
		// fosite says invalid_grant; RFC 6749 section 5.2 says this.
		err = fosite.ErrUnauthorizedClient.WithHint("Public clients may not use the client_credentials grant.")
	}
	if err != nil {
		fail(err)
		return
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		if err := s.grantClientCredentials(ar, sess); err != nil {
			fail(err)
			return
		}
	} else if err := narrowAudience(ar); err != nil {
		fail(err)
		return
	}
	var resp fosite.AccessResponder
	err = s.tokens.Run(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.provider.NewAccessResponse(ctx, ar)
		return err
	})
	if err != nil {
		fail(err)
		return
	}
	writeAccessResponse(w, resp)
}

// writeAccessResponse is fosite's WriteAccessResponse with the JSON
// written by appendJSON (the same bytes, without encoding/json's
// reflection over the response's map).
func writeAccessResponse(w http.ResponseWriter, resp fosite.AccessResponder) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	js, err := appendJSON(make([]byte, 0, 2048), resp.ToMap())
	if err != nil { // a value a handler set that JSON cannot carry
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "The token response could not be encoded.")
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(js)
}

// grantClientCredentials grants what a client_credentials request asked for
// (fosite already refused public clients and scopes or audiences the client
// does not have). The token's subject is the client.
func (s *Server) grantClientCredentials(ar fosite.AccessRequester, sess *session) error {
	client := ar.GetClient()
	if client.IsPublic() {
		return fosite.ErrInvalidClient.WithHint("Public clients may not use the client_credentials grant.")
	}
	for _, scope := range ar.GetRequestedScopes() {
		switch scope {
		case "openid", "offline", "offline_access":
			// user-facing scopes mean nothing without a user
		default:
			ar.GrantScope(scope)
		}
	}
	if err := requestResources(ar); err != nil {
		return err
	}
	grantAudience(ar, client)
	setGrantID(ar)
	sess.Subject = client.GetID()
	sess.ClientID = client.GetID()
	sess.Claims.Subject = client.GetID()
	return nil
}

// logGrantError logs server-side failures; protocol errors are the
// client's business and only logged at debug level.
func (s *Server) logGrantError(ctx context.Context, endpoint string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		s.log.ErrorContext(ctx, endpoint+" failed", "err", err, "debug", rfc.DebugField)
		return
	}
	s.log.DebugContext(ctx, endpoint+" refused", "error", rfc.ErrorField, "hint", rfc.HintField, "debug", rfc.DebugField)
}

// handleRevoke is the RFC 7009 revocation endpoint. Only the client the
// token was issued to may revoke it; revoking either token of a grant
// revokes the grant's access and refresh tokens.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseMultipartForm(1 << 20); err == nil || errors.Is(err, http.ErrNotMultipart) {
		if noClientCredentials(r) {
			writeNoClient(w)
			return
		}
		corsClient(w, requestClientID(r))
	}
	err := s.provider.NewRevocationRequest(ctx, r)
	if err != nil {
		s.logGrantError(ctx, "revoke", err)
	}
	if errors.Is(err, fosite.ErrUnauthorizedClient) {
		// RFC 7009 section 2.1: a token issued to another client is
		// refused with an error (fosite would answer 200); nothing is
		// revoked.
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "The token was not issued to this client.")
		return
	}
	s.provider.WriteRevocationResponse(ctx, w, err)
}

// handleIntrospect is the RFC 7662 introspection endpoint. Only confidential
// clients that authenticate may call it (a bearer token is not enough).
// What a client may learn is mayIntrospect's policy; every other token is
// {"active":false}.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		s.provider.WriteIntrospectionError(ctx, w, fosite.ErrInvalidRequest.WithHint("Unable to parse the request body."))
		return
	}
	if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Introspection requires client authentication; a bearer token is not accepted.")
		return
	}
	client, err := s.provider.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil || client.IsPublic() {
		w.Header().Set("WWW-Authenticate", `Basic realm="bridgekeeper"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The token parameter is missing.")
		return
	}
	use, ar, err := s.provider.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), newSession())
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err != nil || !mayIntrospect(client, use, ar) {
		_, _ = w.Write([]byte(`{"active":false}` + "\n"))
		return
	}
	resp := map[string]any{
		"active":    true,
		"client_id": ar.GetClient().GetID(),
		"iss":       s.cfg.Issuer,
	}
	if scopes := ar.GetGrantedScopes(); len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	if sub := ar.GetSession().GetSubject(); sub != "" {
		resp["sub"] = sub
	}
	if aud := ar.GetGrantedAudience(); len(aud) > 0 {
		resp["aud"] = aud
	}
	if !ar.GetRequestedAt().IsZero() {
		resp["iat"] = ar.GetRequestedAt().Unix()
	}
	tokenType := fosite.AccessToken
	if use == fosite.RefreshToken {
		tokenType = fosite.RefreshToken
		resp["token_type"] = "refresh_token"
	} else {
		resp["token_type"] = "Bearer"
	}
	if exp := ar.GetSession().GetExpiresAt(tokenType); !exp.IsZero() {
		resp["exp"] = exp.Unix()
	}
	dpopIntrospection(resp, use, ar)
	_ = json.NewEncoder(w).Encode(resp)
}

// mayIntrospect is the introspection policy. A confidential client sees
// the tokens issued to itself, and access tokens whose audience names it
// (it is their resource server). An access token with no granted audience
// is meant for its own client (its aud claim is that client), so no other
// client sees it: neither a user's token nor another client's
// client_credentials token. Refresh tokens are visible only to their own
// client. Every other token is reported inactive.
func mayIntrospect(client fosite.Client, use fosite.TokenUse, ar fosite.AccessRequester) bool {
	if ar == nil || ar.GetClient() == nil {
		return false
	}
	if ar.GetClient().GetID() == client.GetID() {
		return true
	}
	return use == fosite.AccessToken && slices.Contains(ar.GetGrantedAudience(), client.GetID())
}

// noClientCredentials reports whether a token or revocation request (form
// already parsed) names no client at all: no Authorization header, no
// client_id, no client assertion.
func noClientCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") == "" && r.PostForm.Get("client_id") == "" && r.PostForm.Get("client_assertion") == ""
}

// writeNoClient answers a request without client authentication: RFC 6749
// section 5.2 invalid_client (fosite would say invalid_request).
func writeNoClient(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="bridgekeeper"`)
	writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed: no client credentials or client_id were sent.")
}

// writeOAuthError writes an RFC 6749 JSON error.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
