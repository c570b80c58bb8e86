package fakeidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func (s *Server) handleDiscovery(f flavour) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		iss := s.issuer(r, f)
		base := s.baseURL(r)
		doc := map[string]any{
			"issuer":                                iss,
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{string(s.alg)},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
			"code_challenge_methods_supported":      []string{"S256"},
			"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
			"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "nonce", "email",
				"email_verified", "name", "given_name", "family_name", "picture"},
		}
		if f == flavourOkta {
			doc["authorization_endpoint"] = iss + "/v1/authorize"
			doc["token_endpoint"] = iss + "/v1/token"
			doc["jwks_uri"] = iss + "/v1/keys"
			doc["userinfo_endpoint"] = iss + "/v1/userinfo"
			doc["scopes_supported"] = []string{"openid", "profile", "email", "groups", "offline_access"}
		} else {
			doc["authorization_endpoint"] = base + "/o/oauth2/v2/auth"
			doc["token_endpoint"] = base + "/token"
			doc["jwks_uri"] = base + "/oauth2/v3/certs"
			doc["userinfo_endpoint"] = base + "/v1/userinfo"
			doc["scopes_supported"] = []string{"openid", "email", "profile"}
		}
		writeJSON(w, http.StatusOK, doc)
	}
}

func (s *Server) handleKeys(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: k.signer.Public(), KeyID: k.kid, Algorithm: string(s.alg), Use: "sig",
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// handleAuthorize serves the login page (GET) and its answer (POST) for
// every flavour: Okta's and Google's authorization endpoints and
// Facebook's login dialog.
func (s *Server) handleAuthorize(f flavour) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if err := r.ParseForm(); err != nil {
			s.renderError(w, http.StatusBadRequest, "The request could not be parsed.")
			return
		}
		q := r.Form
		client, ok := s.client(q.Get("client_id"))
		if !ok {
			s.renderError(w, http.StatusBadRequest, "Unknown client_id.")
			return
		}
		redirectURI := q.Get("redirect_uri")
		if !slices.Contains(client.RedirectURIs, redirectURI) {
			s.renderError(w, http.StatusBadRequest, "The redirect_uri is not registered for this client.")
			return
		}
		state := q.Get("state")
		responseType := q.Get("response_type")
		if f == flavourFacebook && responseType == "" {
			responseType = "code"
		}
		if responseType != "code" {
			s.redirectError(w, r, f, redirectURI, state, "unsupported_response_type", "only response_type=code is supported")
			return
		}
		scopes := splitScopes(q.Get("scope"))
		if f != flavourFacebook && !slices.Contains(scopes, "openid") {
			s.redirectError(w, r, f, redirectURI, state, "invalid_scope", "the openid scope is required")
			return
		}
		challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
		if (challenge != "" || method != "") && (method != "S256" || len(challenge) < 43) {
			s.redirectError(w, r, f, redirectURI, state, "invalid_request", "PKCE needs an S256 code_challenge")
			return
		}
		if r.Method == http.MethodGet {
			// The IdP's own single sign-on: a browser that signed in here
			// before is sent back at once, unless the client asks for a
			// fresh login (prompt=login, max_age, Facebook's
			// auth_type=reauthenticate), as Okta, Google and Dex do.
			fresh, bad := freshness(f, q)
			if bad != "" {
				s.redirectError(w, r, f, redirectURI, state, "invalid_request", bad)
				return
			}
			if user, authTime := s.ssoUser(r); user != nil && fresh.allows(authTime, s.now()) {
				s.issueCode(w, r, f, client, user, authTime, scopes, challenge)
				return
			}
			if slices.Contains(strings.Fields(q.Get("prompt")), "none") {
				s.redirectError(w, r, f, redirectURI, state, "login_required", "the user is not signed in")
				return
			}
			s.renderLogin(w, r, f, client.ID, http.StatusOK, "")
			return
		}
		if r.PostForm.Get("action") == "deny" {
			s.redirectError(w, r, f, redirectURI, state, "access_denied", "the user cancelled the login")
			return
		}
		user, problem := s.authenticate(r.PostForm)
		if user == nil {
			s.renderLogin(w, r, f, client.ID, http.StatusUnauthorized, problem)
			return
		}
		authTime := s.now()
		s.startSSO(w, user.Subject, authTime)
		s.issueCode(w, r, f, client, user, authTime, scopes, challenge)
	}
}

// issueCode sends the browser back to the client with a code for user,
// who authenticated at authTime.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, f flavour, client Client, user *User, authTime time.Time, scopes []string, challenge string) {
	q := r.Form
	redirectURI, state := q.Get("redirect_uri"), q.Get("state")
	g := &grant{
		flavour:     f,
		clientID:    client.ID,
		subject:     user.Subject,
		redirectURI: redirectURI,
		scopes:      scopes,
		nonce:       q.Get("nonce"),
		challenge:   challenge,
		offline:     slices.Contains(scopes, "offline_access") || q.Get("access_type") == "offline",
		expires:     s.now().Add(codeLifetime),
		authTime:    authTime,
	}
	if f != flavourFacebook {
		g.issuer = s.issuer(r, f)
		idToken, err := s.mintIDToken(g, *user)
		if err != nil {
			s.logger.Error("fakeidp: mint ID token", "err", err)
			s.renderError(w, http.StatusInternalServerError, "Could not sign the ID token.")
			return
		}
		g.idToken = idToken
	}
	code := randomToken(24)
	s.mu.Lock()
	s.pruneLocked(s.codes)
	s.codes[code] = g
	s.mu.Unlock()
	s.logger.Info("fakeidp: login", "flavour", f, "subject", user.Subject, "client", client.ID)
	back := url.Values{"code": {code}}
	if state != "" {
		back.Set("state", state)
	}
	redirect(w, redirectURI, back)
}

// authenticate picks the user the login form names: a "subject" button, or
// e-mail and password.
func (s *Server) authenticate(form url.Values) (*User, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var user *User
	if sub := form.Get("subject"); sub != "" {
		user = s.users[sub]
		if user == nil {
			return nil, "No such user."
		}
	} else {
		email, password := form.Get("email"), form.Get("password")
		for _, u := range s.users {
			if u.Email != "" && strings.EqualFold(u.Email, email) {
				user = u
				break
			}
		}
		if user == nil || user.Password == "" ||
			subtle.ConstantTimeCompare([]byte(user.Password), []byte(password)) != 1 {
			return nil, "Wrong e-mail or password."
		}
	}
	if user.Disabled {
		return nil, "This account is disabled."
	}
	u := *user
	return &u, ""
}

func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, f flavour, redirectURI, state, code, description string) {
	v := url.Values{"error": {code}, "error_description": {description}}
	if f == flavourFacebook && code == "access_denied" {
		v.Set("error_reason", "user_denied")
		v.Set("error_code", "200")
		v.Set("error_description", "Permissions error")
	}
	if state != "" {
		v.Set("state", state)
	}
	s.logger.Info("fakeidp: authorization error", "flavour", f, "error", code, "path", r.URL.Path)
	redirect(w, redirectURI, v)
}

func redirect(w http.ResponseWriter, to string, params url.Values) {
	u, err := url.Parse(to)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

func (s *Server) handleToken(f flavour) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "the body could not be parsed")
			return
		}
		client, ok := s.authenticateClient(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="fakeidp"`)
			oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		s.mu.Lock()
		forced := s.tokenError
		s.tokenError = ""
		s.mu.Unlock()
		if forced != "" {
			oauthError(w, http.StatusBadRequest, forced, "the fake IdP was told to fail this request")
			return
		}
		iss := s.issuer(r, f)
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			s.exchangeCode(w, r, f, iss, client)
		case "refresh_token":
			s.refresh(w, r, f, iss, client)
		default:
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "use authorization_code or refresh_token")
		}
	}
}

func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request, f flavour, iss string, client Client) {
	form := r.PostForm
	s.mu.Lock()
	code := form.Get("code")
	g := s.codes[code]
	delete(s.codes, code)
	var disabled bool
	if g != nil {
		if u := s.users[g.subject]; u == nil || u.Disabled {
			disabled = true
		}
	}
	s.mu.Unlock()
	switch {
	case g == nil || g.flavour != f || g.issuer != iss || s.now().After(g.expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown, used or expired")
		return
	case g.clientID != client.ID:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
		return
	case g.redirectURI != form.Get("redirect_uri"):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	case disabled:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the user is disabled")
		return
	}
	verifier := form.Get("code_verifier")
	if g.challenge == "" && verifier != "" {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier sent but no code_challenge was")
		return
	}
	if g.challenge != "" {
		sum := sha256.Sum256([]byte(verifier))
		if verifier == "" || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1 {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
			return
		}
	}
	s.issueTokens(w, g, g.idToken)
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request, f flavour, iss string, client Client) {
	token := r.PostForm.Get("refresh_token")
	s.mu.Lock()
	g := s.refreshTokens[token]
	var user User
	ok := g != nil && g.flavour == f && g.issuer == iss && g.clientID == client.ID
	if ok {
		u := s.users[g.subject]
		if u == nil || u.Disabled {
			delete(s.refreshTokens, token)
			ok = false
		} else {
			user = *u
		}
	}
	if ok && f == flavourOkta {
		// Okta rotates refresh tokens (Google keeps them); the rotated one
		// stays usable for the grace period.
		switch now := s.now(); {
		case s.cfg.OktaRefreshGrace <= 0:
			delete(s.refreshTokens, token)
		case g.rotatedAt.IsZero():
			g.rotatedAt = now
		case now.Sub(g.rotatedAt) > s.cfg.OktaRefreshGrace:
			delete(s.refreshTokens, token)
			ok = false
		}
	}
	s.mu.Unlock()
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is invalid or the user is disabled")
		return
	}
	fresh := *g
	fresh.nonce = ""
	fresh.rotatedAt = time.Time{}
	idToken, err := s.mintIDToken(&fresh, user)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not sign the ID token")
		return
	}
	if f != flavourOkta {
		fresh.offline = false // keep the refresh token the client has
	}
	s.issueTokens(w, &fresh, idToken)
}

// issueTokens answers a token request with a new access token, the ID
// token and, for offline grants, a new refresh token.
func (s *Server) issueTokens(w http.ResponseWriter, g *grant, idToken string) {
	access := randomToken(24)
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(accessLifetime.Seconds()),
		"scope":        strings.Join(g.scopes, " "),
	}
	if idToken != "" {
		resp["id_token"] = idToken
	}
	s.mu.Lock()
	at := *g
	at.expires = s.now().Add(accessLifetime)
	s.pruneLocked(s.accessTokens)
	s.accessTokens[access] = &at
	if g.offline {
		refresh := randomToken(32)
		rt := *g
		rt.expires = s.now().AddDate(1, 0, 0)
		s.refreshTokens[refresh] = &rt
		resp["refresh_token"] = refresh
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) authenticateClient(r *http.Request) (Client, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return Client{}, false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, ok := s.client(id)
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return Client{}, false
	}
	return c, true
}

func (s *Server) client(id string) (Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

func (s *Server) handleUserinfo(f flavour) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && r.Method == http.MethodPost {
			token = r.PostFormValue("access_token")
		}
		s.mu.Lock()
		g := s.accessTokens[token]
		var user User
		valid := g != nil && g.flavour == f && g.issuer == s.issuer(r, f) && !s.now().After(g.expires)
		if valid {
			u := s.users[g.subject]
			valid = u != nil && !u.Disabled
			if valid {
				user = *u
			}
		}
		s.mu.Unlock()
		if !valid {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			oauthError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid or the user is disabled")
			return
		}
		writeJSON(w, http.StatusOK, userClaims(user, g.scopes, f))
	}
}

// userClaims are the user's claims the scopes allow, shaped like the
// flavour's: Okta adds groups, Google adds hd.
func userClaims(u User, scopes []string, f flavour) map[string]any {
	c := map[string]any{"sub": u.Subject}
	if slices.Contains(scopes, "email") && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if slices.Contains(scopes, "profile") {
		for k, v := range map[string]string{"name": u.Name, "given_name": u.GivenName,
			"family_name": u.FamilyName, "picture": u.Picture} {
			if v != "" {
				c[k] = v
			}
		}
		if f == flavourOkta && u.Email != "" {
			c["preferred_username"] = u.Email
		}
	}
	if f == flavourOkta && slices.Contains(scopes, "groups") && len(u.Groups) > 0 {
		c["groups"] = u.Groups
	}
	if f == flavourGoogle && u.HostedDomain != "" {
		c["hd"] = u.HostedDomain
	}
	return c
}

// mintIDToken signs an ID token for g, applying (and clearing) the pending
// fault.
func (s *Server) mintIDToken(g *grant, u User) (string, error) {
	s.mu.Lock()
	fault := s.nextFault
	s.nextFault = FaultNone
	thin := s.thinIDTokens
	key := s.keys[len(s.keys)-1]
	secret := s.clients[g.clientID].Secret
	now := s.now()
	s.mu.Unlock()

	claims := map[string]any{}
	if !thin {
		claims = userClaims(u, g.scopes, g.flavour)
	}
	claims["sub"] = u.Subject
	claims["iss"] = g.issuer
	claims["aud"] = g.clientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(idLifetime).Unix()
	claims["auth_time"] = now.Unix()
	if !g.authTime.IsZero() {
		claims["auth_time"] = g.authTime.Unix()
	}
	if g.flavour == flavourGoogle {
		claims["azp"] = g.clientID
	}
	if len(u.AMR) > 0 {
		claims["amr"] = u.AMR
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	signing := jose.SigningKey{Algorithm: s.alg, Key: jose.JSONWebKey{Key: key.signer, KeyID: key.kid}}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	switch fault {
	case FaultExpired:
		claims["iat"] = now.Add(-2 * idLifetime).Unix()
		claims["auth_time"] = claims["iat"]
		claims["exp"] = now.Add(-idLifetime).Unix()
	case FaultNoAuthTime:
		delete(claims, "auth_time")
	case FaultWrongNonce:
		claims["nonce"] = "not-" + g.nonce
	case FaultWrongAudience:
		claims["aud"] = "some-other-client"
	case FaultWrongIssuer:
		claims["iss"] = "https://issuer.invalid"
	case FaultBadSignature:
		other, err := s.impostorKey()
		if err != nil {
			return "", err
		}
		signing.Key = jose.JSONWebKey{Key: other, KeyID: key.kid}
	case FaultHS256:
		hmacKey := []byte(secret)
		if len(hmacKey) < sha256.Size { // go-jose refuses short HMAC keys
			sum := sha256.Sum256(hmacKey)
			hmacKey = sum[:]
		}
		signing = jose.SigningKey{Algorithm: jose.HS256, Key: hmacKey}
		opts = opts.WithHeader(jose.HeaderKey("kid"), key.kid)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode ID token claims: %w", err)
	}
	signer, err := jose.NewSigner(signing, opts)
	if err != nil {
		return "", fmt.Errorf("ID token signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign ID token: %w", err)
	}
	return jws.CompactSerialize()
}

// impostorKey is a key of the server's algorithm that is never published.
func (s *Server) impostorKey() (any, error) {
	if s.alg == jose.ES256 {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
