// Package oidctest is a small OpenID Connect issuer for testing the browser
// client: authorization code with PKCE S256, rotating refresh tokens whose
// reuse revokes the family, revocation, userinfo, RP-initiated logout and a
// JWKS, with counters and switches the tests use (broker down, revoke all,
// tamper with the next ID token). It is test support, never a real broker.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config configures the issuer.
type Config struct {
	// Issuer is the issuer URL; set it after the listener is known.
	Issuer   string
	ClientID string
	// RedirectURIs and PostLogoutRedirectURIs are matched exactly.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// AllowedOrigins get CORS headers on the token, revoke and userinfo endpoints.
	AllowedOrigins []string
	// AccessTokenTTL defaults to 5 minutes.
	AccessTokenTTL time.Duration
	// Alg is RS256 (default) or ES256.
	Alg string
	// Users maps e-mail to password.
	Users map[string]string
	// AutoLogin, when set, logs this user in without a form.
	AutoLogin string
	// Now replaces the clock.
	Now func() time.Time
	// DPoP advertises DPoP (ES256) in discovery. Proofs are checked and
	// tokens bound whenever a request carries one.
	DPoP bool
}

// Server is the test issuer; it is an http.Handler.
type Server struct {
	cfg    Config
	signer crypto.Signer
	kid    string
	mux    *http.ServeMux

	mu       sync.Mutex
	codes    map[string]*grant
	refresh  map[string]*refreshToken
	access   map[string]*grant
	sessions map[string]*grant // browser sessions by cookie
	stats    Stats
	down     bool
	tamper   bool
	// slow delays every token endpoint answer.
	slow time.Duration
	// Nonce overrides the nonce put in the next ID token when set.
	nextNonce *string
	// dpopNonce, when set, is the nonce every DPoP proof must carry.
	dpopNonce string
	jtis      map[string]bool
}

// Stats counts what happened.
type Stats struct {
	AuthorizationCodeGrants int `json:"authorization_code_grants"`
	RefreshGrants           int `json:"refresh_grants"`
	RefreshRejected         int `json:"refresh_rejected"`
	Revocations             int `json:"revocations"`
	Logins                  int `json:"logins"`
	Logouts                 int `json:"logouts"`
	DPoPProofs              int `json:"dpop_proofs"`
	NonceChallenges         int `json:"nonce_challenges"`
}

type grant struct {
	sub, email, scope, nonce, challenge, redirect string
	jkt                                           string // DPoP key the grant is bound to
	authTime                                      time.Time
	expires                                       time.Time
	family                                        string
}

type refreshToken struct {
	g       *grant
	used    bool
	revoked bool
}

// New creates a test issuer with a fresh signing key.
func New(cfg Config) (*Server, error) {
	if cfg.AccessTokenTTL == 0 {
		cfg.AccessTokenTTL = 5 * time.Minute
	}
	if cfg.Alg == "" {
		cfg.Alg = "RS256"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, codes: map[string]*grant{}, refresh: map[string]*refreshToken{},
		access: map[string]*grant{}, sessions: map[string]*grant{}, jtis: map[string]bool{}}
	var err error
	switch cfg.Alg {
	case "RS256":
		s.signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		s.signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("unsupported alg %q", cfg.Alg)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	s.kid = randomString(8)
	m := http.NewServeMux()
	m.HandleFunc("/.well-known/openid-configuration", s.cors(s.discovery))
	m.HandleFunc("/.well-known/jwks.json", s.cors(s.jwks))
	m.HandleFunc("GET /oauth2/auth", s.authorize)
	m.HandleFunc("POST /oauth2/auth", s.authorize)
	m.HandleFunc("/oauth2/token", s.cors(s.token))
	m.HandleFunc("/oauth2/revoke", s.cors(s.revoke))
	m.HandleFunc("/userinfo", s.cors(s.userinfo))
	m.HandleFunc("GET /oauth2/logout", s.logout)
	m.HandleFunc("GET /test/stats", s.cors(s.statsHandler))
	m.HandleFunc("POST /test/down", s.cors(s.setDown))
	m.HandleFunc("POST /test/revoke-all", s.cors(s.revokeAll))
	m.HandleFunc("POST /test/tamper", s.cors(s.setTamper))
	m.HandleFunc("POST /test/ttl", s.cors(s.setTTL))
	m.HandleFunc("POST /test/slow", s.cors(s.setSlow))
	m.HandleFunc("POST /test/dpop-nonce", s.cors(s.setDPoPNonce))
	s.mux = m
	return s, nil
}

// SetIssuer sets the issuer URL once the listener address is known.
func (s *Server) SetIssuer(issuer string) { s.cfg.Issuer = issuer }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// SetDown makes every endpoint answer 503 (down=true) or work again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// RevokeAll revokes every refresh token.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refresh {
		rt.revoked = true
	}
}

// TamperNextIDToken makes the next ID token carry a broken signature.
func (s *Server) TamperNextIDToken() {
	s.mu.Lock()
	s.tamper = true
	s.mu.Unlock()
}

// SetNextNonce makes the next ID token carry this nonce.
func (s *Server) SetNextNonce(n string) {
	s.mu.Lock()
	s.nextNonce = &n
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down && !strings.HasPrefix(r.URL.Path, "/test/") {
		s.corsHeaders(w, r)
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) corsHeaders(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" && slices.Contains(s.cfg.AllowedOrigins, o) {
		w.Header().Set("Access-Control-Allow-Origin", o)
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
		w.Header().Set("Access-Control-Expose-Headers", "DPoP-Nonce, WWW-Authenticate")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Add("Vary", "Origin")
	}
}

func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.corsHeaders(w, r)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	i := s.cfg.Issuer
	doc := map[string]any{
		"issuer":                                         i,
		"authorization_endpoint":                         i + "/oauth2/auth",
		"token_endpoint":                                 i + "/oauth2/token",
		"userinfo_endpoint":                              i + "/userinfo",
		"revocation_endpoint":                            i + "/oauth2/revoke",
		"end_session_endpoint":                           i + "/oauth2/logout",
		"jwks_uri":                                       i + "/.well-known/jwks.json",
		"response_types_supported":                       []string{"code"},
		"code_challenge_methods_supported":               []string{"S256"},
		"id_token_signing_alg_values_supported":          []string{s.cfg.Alg},
		"authorization_response_iss_parameter_supported": true,
	}
	if s.cfg.DPoP {
		doc["dpop_signing_alg_values_supported"] = []string{"ES256"}
	}
	writeJSON(w, 200, doc)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	var k map[string]string
	switch pub := s.signer.Public().(type) {
	case *rsa.PublicKey:
		k = map[string]string{"kty": "RSA", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		ecdh, _ := pub.ECDH()
		raw := ecdh.Bytes() // 0x04 || X || Y
		k = map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	k["kid"], k["use"], k["alg"] = s.kid, "sig", s.cfg.Alg
	writeJSON(w, 200, map[string]any{"keys": []any{k}})
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test issuer login</title></head><body>
<h1>Log in</h1>{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/oauth2/auth?{{.Query}}">
<label>E-mail <input name="email" type="email"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Log in</button>
</form></body></html>`))

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != s.cfg.ClientID || !slices.Contains(s.cfg.RedirectURIs, redirect) {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back := func(p url.Values) {
		p.Set("state", q.Get("state"))
		p.Set("iss", s.cfg.Issuer)
		http.Redirect(w, r, redirect+"?"+p.Encode(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		back(url.Values{"error": {"invalid_request"}, "error_description": {"PKCE S256 is required"}})
		return
	case len(q.Get("state")) < 8:
		back(url.Values{"error": {"invalid_request"}, "error_description": {"state too short"}})
		return
	}
	now := s.cfg.Now()
	var user string
	var authTime time.Time
	if c, err := r.Cookie("test_op_session"); err == nil {
		s.mu.Lock()
		if g, ok := s.sessions[c.Value]; ok {
			user, authTime = g.email, g.authTime
		}
		s.mu.Unlock()
	}
	if user != "" {
		if q.Get("prompt") == "login" {
			user = ""
		} else if ma := q.Get("max_age"); ma != "" {
			var sec int
			fmt.Sscan(ma, &sec)
			if now.Sub(authTime) > time.Duration(sec)*time.Second {
				user = ""
			}
		}
	}
	if user == "" && s.cfg.AutoLogin != "" {
		user, authTime = s.cfg.AutoLogin, now
	}
	if user == "" && r.Method == http.MethodPost {
		email, pw := r.PostFormValue("email"), r.PostFormValue("password")
		if want, ok := s.cfg.Users[email]; ok && want == pw {
			user, authTime = email, now
			sid := randomString(16)
			s.mu.Lock()
			s.sessions[sid] = &grant{email: email, authTime: now}
			s.mu.Unlock()
			http.SetCookie(w, &http.Cookie{Name: "test_op_session", Value: sid, Path: "/", HttpOnly: true})
		} else {
			w.WriteHeader(http.StatusUnauthorized)
			_ = loginPage.Execute(w, map[string]any{"Query": template.URL(r.URL.RawQuery), "Error": "Wrong e-mail or password"})
			return
		}
	}
	if user == "" {
		if q.Get("prompt") == "none" {
			back(url.Values{"error": {"login_required"}})
			return
		}
		_ = loginPage.Execute(w, map[string]any{"Query": template.URL(r.URL.RawQuery)})
		return
	}
	code := randomString(24)
	s.mu.Lock()
	s.codes[code] = &grant{sub: "user-" + user, email: user, scope: q.Get("scope"), nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), redirect: redirect, authTime: authTime, expires: now.Add(time.Minute),
		jkt: q.Get("dpop_jkt")}
	s.stats.Logins++
	s.mu.Unlock()
	back(url.Values{"code": {code}})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, 405, "invalid_request", "POST only")
		return
	}
	if r.PostFormValue("client_id") != s.cfg.ClientID {
		oauthError(w, 401, "invalid_client", "unknown client")
		return
	}
	s.mu.Lock()
	slow := s.slow
	s.mu.Unlock()
	time.Sleep(slow)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	jkt, err := s.checkProof(r, "")
	if err != nil {
		s.proofError(w, err, false)
		return
	}
	var g *grant
	var nonce string
	switch r.PostFormValue("grant_type") {
	case "authorization_code":
		code := r.PostFormValue("code")
		g = s.codes[code]
		delete(s.codes, code)
		if g == nil || now.After(g.expires) || g.redirect != r.PostFormValue("redirect_uri") {
			oauthError(w, 400, "invalid_grant", "bad code")
			return
		}
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if b64(sum[:]) != g.challenge {
			oauthError(w, 400, "invalid_grant", "PKCE verification failed")
			return
		}
		if g.jkt != "" && g.jkt != jkt {
			oauthError(w, 400, "invalid_grant", "the code is bound to another DPoP key (dpop_jkt)")
			return
		}
		g.jkt = jkt
		g.family = randomString(8)
		nonce = g.nonce
		s.stats.AuthorizationCodeGrants++
	case "refresh_token":
		rt := s.refresh[r.PostFormValue("refresh_token")]
		switch {
		case rt == nil || rt.revoked:
			s.stats.RefreshRejected++
			oauthError(w, 400, "invalid_grant", "refresh token invalid or revoked")
			return
		case rt.used:
			// Reuse of a rotated token: revoke the whole family.
			for _, other := range s.refresh {
				if other.g.family == rt.g.family {
					other.revoked = true
				}
			}
			s.stats.RefreshRejected++
			oauthError(w, 400, "invalid_grant", "refresh token reused")
			return
		}
		if rt.g.jkt != "" && rt.g.jkt != jkt {
			s.stats.RefreshRejected++
			oauthError(w, 400, "invalid_grant", "the refresh token is bound to a DPoP key and the request has no proof from it")
			return
		}
		rt.used = true
		g = rt.g
		s.stats.RefreshGrants++
	default:
		oauthError(w, 400, "unsupported_grant_type", "")
		return
	}
	access := randomString(24)
	ag := *g
	ag.expires = now.Add(s.cfg.AccessTokenTTL)
	s.access[access] = &ag
	tokenType := "Bearer"
	if g.jkt != "" {
		tokenType = "DPoP"
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   tokenType,
		"expires_in":   int(s.cfg.AccessTokenTTL.Seconds()),
		"scope":        g.scope,
	}
	if strings.Contains(" "+g.scope+" ", " offline_access ") {
		rt := randomString(24)
		s.refresh[rt] = &refreshToken{g: g}
		resp["refresh_token"] = rt
	}
	if s.nextNonce != nil {
		nonce, s.nextNonce = *s.nextNonce, nil
	}
	idt, err := s.idToken(g, nonce, access, now)
	if err != nil {
		oauthError(w, 500, "server_error", err.Error())
		return
	}
	resp["id_token"] = idt
	writeJSON(w, 200, resp)
}

func (s *Server) idToken(g *grant, nonce, access string, now time.Time) (string, error) {
	sum := sha256.Sum256([]byte(access))
	claims := map[string]any{
		"iss": s.cfg.Issuer, "aud": s.cfg.ClientID, "sub": g.sub, "email": g.email,
		"name": strings.Split(g.email, "@")[0], "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"auth_time": g.authTime.Unix(), "at_hash": b64(sum[:16]),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	tok, err := s.Sign(claims)
	if err != nil {
		return "", err
	}
	if s.tamper {
		s.tamper = false
		tok = tok[:len(tok)-4] + "AAAA"
	}
	return tok, nil
}

// Sign makes a compact JWS with the issuer's key.
func (s *Server) Sign(claims map[string]any) (string, error) {
	hdr, _ := json.Marshal(map[string]string{"alg": s.cfg.Alg, "kid": s.kid, "typ": "JWT"})
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := b64(hdr) + "." + b64(body)
	sum := sha256.Sum256([]byte(signed))
	var sig []byte
	switch k := s.signer.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		var r, ss *big.Int
		r, ss, err = ecdsa.Sign(rand.Reader, k, sum[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
		}
	}
	if err != nil {
		return "", err
	}
	return signed + "." + b64(sig), nil
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	s.mu.Lock()
	if rt, ok := s.refresh[tok]; ok {
		for _, other := range s.refresh {
			if other.g.family == rt.g.family {
				other.revoked = true
			}
		}
	}
	delete(s.access, tok)
	s.stats.Revocations++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	g := s.access[tok]
	var jkt string
	var err error
	if scheme == "DPoP" {
		jkt, err = s.checkProof(r, tok)
	}
	s.mu.Unlock()
	if err != nil {
		s.proofError(w, err, true)
		return
	}
	ok := (scheme == "Bearer" && g != nil && g.jkt == "") || (scheme == "DPoP" && g != nil && g.jkt != "" && g.jkt == jkt)
	if !ok || s.cfg.Now().After(g.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, 401, "invalid_token", "access token invalid or expired")
		return
	}
	writeJSON(w, 200, map[string]any{"sub": g.sub, "email": g.email, "scope": g.scope})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("test_op_session"); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: "test_op_session", Value: "", Path: "/", MaxAge: -1})
	s.mu.Lock()
	s.stats.Logouts++
	s.mu.Unlock()
	q := r.URL.Query()
	if u := q.Get("post_logout_redirect_uri"); u != "" && slices.Contains(s.cfg.PostLogoutRedirectURIs, u) {
		if st := q.Get("state"); st != "" {
			u += "?state=" + url.QueryEscape(st)
		}
		http.Redirect(w, r, u, http.StatusFound)
		return
	}
	fmt.Fprintln(w, "logged out")
}

func (s *Server) statsHandler(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, s.Stats()) }

func (s *Server) setDown(w http.ResponseWriter, r *http.Request) {
	s.SetDown(r.URL.Query().Get("down") != "false")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) revokeAll(w http.ResponseWriter, r *http.Request) {
	s.RevokeAll()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setTTL(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("ttl"))
	if err != nil || d <= 0 {
		http.Error(w, "ttl must be a positive duration", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.cfg.AccessTokenTTL = d
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// setSlow makes the token endpoint answer after ?delay= (0 to stop).
func (s *Server) setSlow(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("delay"))
	if err != nil || d < 0 {
		http.Error(w, "delay must be a duration", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.slow = d
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setTamper(w http.ResponseWriter, r *http.Request) {
	s.TamperNextIDToken()
	w.WriteHeader(http.StatusNoContent)
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b64(b)
}
