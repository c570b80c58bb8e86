package fakeidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Facebook user access tokens live about 60 days.
const graphTokenLifetime = 60 * 24 * time.Hour

// graphError answers in the Graph API's error shape.
func graphError(w http.ResponseWriter, status int, typ string, code, subcode int, message string) {
	body := map[string]any{"message": message, "type": typ, "code": code, "fbtrace_id": randomToken(8)}
	if subcode != 0 {
		body["error_subcode"] = subcode
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// handleGraphToken is Graph's /oauth/access_token: it trades the dialog's
// code for a user access token. Credentials come as parameters.
func (s *Server) handleGraphToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		graphError(w, http.StatusBadRequest, "OAuthException", 100, 0, "Malformed request.")
		return
	}
	q := r.Form
	client, ok := s.client(q.Get("client_id"))
	if !ok || subtle.ConstantTimeCompare([]byte(client.Secret), []byte(q.Get("client_secret"))) != 1 {
		graphError(w, http.StatusBadRequest, "OAuthException", 1, 0, "Error validating client secret.")
		return
	}
	s.mu.Lock()
	forced := s.tokenError
	s.tokenError = ""
	code := q.Get("code")
	g := s.codes[code]
	delete(s.codes, code)
	s.mu.Unlock()
	if forced != "" {
		graphError(w, http.StatusBadRequest, "OAuthException", 100, 0, "Forced failure: "+forced)
		return
	}
	if g == nil || g.flavour != flavourFacebook || g.clientID != client.ID || s.now().After(g.expires) {
		graphError(w, http.StatusBadRequest, "OAuthException", 100, 36009, "This authorization code has expired or been used.")
		return
	}
	if g.redirectURI != q.Get("redirect_uri") {
		graphError(w, http.StatusBadRequest, "OAuthException", 100, 36008,
			"Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request")
		return
	}
	token := randomToken(32)
	s.mu.Lock()
	at := *g
	at.expires = s.now().Add(graphTokenLifetime)
	s.pruneLocked(s.accessTokens)
	s.accessTokens[token] = &at
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token, "token_type": "bearer", "expires_in": int(graphTokenLifetime.Seconds()),
	})
}

// handleGraphMe is Graph's /me. It requires appsecret_proof, the hex
// HMAC-SHA256 of the access token keyed by the app secret.
func (s *Server) handleGraphMe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("access_token")
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = t
	}
	s.mu.Lock()
	g := s.accessTokens[token]
	var user *User
	var secret string
	if g != nil && g.flavour == flavourFacebook {
		if u := s.users[g.subject]; u != nil {
			copied := *u
			user = &copied
		}
		secret = s.clients[g.clientID].Secret
	}
	s.mu.Unlock()
	switch {
	case token == "":
		graphError(w, http.StatusBadRequest, "OAuthException", 2500, 0, "An active access token must be used to query information about the current user.")
		return
	case user == nil:
		graphError(w, http.StatusBadRequest, "OAuthException", 190, 0, "Invalid OAuth access token data.")
		return
	case s.now().After(g.expires):
		graphError(w, http.StatusBadRequest, "OAuthException", 190, 463, "Error validating access token: Session has expired.")
		return
	}
	proof := q.Get("appsecret_proof")
	if proof == "" {
		graphError(w, http.StatusBadRequest, "GraphMethodException", 100, 0, "API calls from the server require an appsecret_proof argument")
		return
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(token))
	want := hex.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(proof)), []byte(want)) != 1 {
		graphError(w, http.StatusBadRequest, "GraphMethodException", 100, 0, "Invalid appsecret_proof provided in the API argument")
		return
	}
	if user.Disabled {
		graphError(w, http.StatusBadRequest, "OAuthException", 190, 460,
			"Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.")
		return
	}
	fields := splitScopes(q.Get("fields"))
	if len(fields) == 0 {
		fields = []string{"id", "name"}
	}
	out := map[string]any{}
	for _, f := range fields {
		switch f {
		case "id":
			out["id"] = user.Subject
		case "name":
			out["name"] = user.Name
		case "first_name":
			out["first_name"] = user.GivenName
		case "last_name":
			out["last_name"] = user.FamilyName
		case "email":
			// Facebook leaves email out when the account has none or the
			// user declined the permission.
			if user.Email != "" && slices.Contains(g.scopes, "email") {
				out["email"] = user.Email
			}
		case "picture":
			pic := user.Picture
			silhouette := pic == ""
			if silhouette {
				pic = s.baseURL(r) + "/silhouette.png"
			}
			out["picture"] = map[string]any{"data": map[string]any{
				"height": 50, "width": 50, "is_silhouette": silhouette, "url": pic,
			}}
		default:
			graphError(w, http.StatusBadRequest, "OAuthException", 100, 0,
				"(#100) Tried accessing nonexisting field ("+f+") on node type (User)")
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}
