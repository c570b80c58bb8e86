package broker

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
)

// jwksMaxAge is how long clients may cache the JWKS. It is far shorter than
// the time a new key is published before it signs (a rotation period), so
// verifiers always know a key before they see a token signed with it.
const jwksMaxAge = "300"

func (s *Server) discoveryDocument() ([]byte, error) {
	doc := map[string]any{
		"issuer":                                        s.cfg.Issuer,
		"authorization_endpoint":                        s.url(pathAuth),
		"token_endpoint":                                s.url(pathToken),
		"userinfo_endpoint":                             s.url(pathUserinfo),
		"jwks_uri":                                      s.url(pathJWKS),
		"revocation_endpoint":                           s.url(pathRevoke),
		"introspection_endpoint":                        s.url(pathIntrospect),
		"end_session_endpoint":                          s.url(pathLogout),
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query", "fragment", "form_post"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{s.keys.Algorithm()},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
		"scopes_supported":                              []string{"openid", "profile", "email", "offline_access"},
		"acr_values_supported":                          mfa.Supported,
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "acr", "idp",
			"name", "given_name", "family_name", "picture", "updated_at", "email", "email_verified"},
		"prompt_values_supported":                        []string{"none", "login"},
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     false,
		"frontchannel_logout_supported":                  false,
		"backchannel_logout_supported":                   false,
		"authorization_response_iss_parameter_supported": true, // RFC 9207
		"dpop_signing_alg_values_supported":              dpopAlgorithms(),
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(s.discovery)
}

// handleJWKS serves the public keys from memory (keys.Manager rebuilds the
// document only when keys change), with an ETag for conditional requests.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	doc, etag := s.keys.JWKS()
	h := w.Header()
	h.Set("Cache-Control", "public, max-age="+jwksMaxAge)
	if etag != "" {
		quoted := etag
		if !strings.HasPrefix(quoted, `"`) && !strings.HasPrefix(quoted, `W/"`) {
			quoted = `"` + etag + `"`
		}
		h.Set("ETag", quoted)
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, quoted) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

func etagMatches(header, etag string) bool {
	for _, m := range strings.Split(header, ",") {
		m = strings.TrimSpace(m)
		if m == "*" || strings.TrimPrefix(m, "W/") == strings.TrimPrefix(etag, "W/") {
			return true
		}
	}
	return false
}
