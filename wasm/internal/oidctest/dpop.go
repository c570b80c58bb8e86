package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// DPoP (RFC 9449) at the test issuer: enough of it to test the browser
// client (proofs checked, tokens bound, nonces), never a reference.

// dpopError is a refused proof: the RFC's error code and a description.
type dpopError struct{ code, desc string }

func (e *dpopError) Error() string { return e.code + ": " + e.desc }

// checkProof verifies the request's DPoP proof and returns the thumbprint
// of its key, "" when the request has none. accessToken is the token the
// request presents ("" at the token endpoint). Call with s.mu held.
func (s *Server) checkProof(r *http.Request, accessToken string) (string, error) {
	values := r.Header.Values("DPoP")
	if len(values) == 0 {
		return "", nil
	}
	bad := func(desc string) (string, error) { return "", &dpopError{"invalid_dpop_proof", desc} }
	if len(values) > 1 {
		return bad("more than one DPoP header")
	}
	parts := strings.Split(values[0], ".")
	if len(parts) != 3 {
		return bad("not a compact JWS")
	}
	var hdr struct {
		Typ string            `json:"typ"`
		Alg string            `json:"alg"`
		JWK map[string]string `json:"jwk"`
	}
	var claims struct {
		JTI   string  `json:"jti"`
		HTM   string  `json:"htm"`
		HTU   string  `json:"htu"`
		IAT   float64 `json:"iat"`
		ATH   string  `json:"ath"`
		Nonce string  `json:"nonce"`
	}
	if decodePart(parts[0], &hdr) != nil || decodePart(parts[1], &claims) != nil {
		return bad("undecodable header or claims")
	}
	switch {
	case hdr.Typ != "dpop+jwt":
		return bad("typ is not dpop+jwt")
	case hdr.Alg != "ES256":
		return bad("alg is not ES256")
	case hdr.JWK["kty"] != "EC" || hdr.JWK["crv"] != "P-256" || hdr.JWK["d"] != "":
		return bad("jwk is not a public P-256 key")
	}
	x, errX := base64.RawURLEncoding.DecodeString(hdr.JWK["x"])
	y, errY := base64.RawURLEncoding.DecodeString(hdr.JWK["y"])
	sig, errS := base64.RawURLEncoding.DecodeString(parts[2])
	if errX != nil || errY != nil || errS != nil || len(sig) != 64 {
		return bad("bad key or signature encoding")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return bad("signature does not verify")
	}
	now := s.cfg.Now()
	iat := time.Unix(int64(claims.IAT), 0)
	switch {
	case claims.HTM != r.Method:
		return bad("htm is not " + r.Method)
	case claims.HTU != s.cfg.Issuer+r.URL.Path:
		return bad("htu is not " + s.cfg.Issuer + r.URL.Path)
	case iat.Before(now.Add(-time.Minute)) || iat.After(now.Add(time.Minute)):
		return bad("iat is not within a minute of now")
	case claims.JTI == "" || s.jtis[claims.JTI]:
		return bad("jti missing or replayed")
	}
	if accessToken != "" {
		ath := sha256.Sum256([]byte(accessToken))
		if claims.ATH != b64(ath[:]) {
			return bad("ath does not match the access token")
		}
	}
	if s.dpopNonce != "" && claims.Nonce != s.dpopNonce {
		s.stats.NonceChallenges++
		return "", &dpopError{"use_dpop_nonce", "the proof must carry the server's nonce"}
	}
	s.jtis[claims.JTI] = true
	s.stats.DPoPProofs++
	tp, _ := json.Marshal(map[string]string{"crv": "P-256", "kty": "EC", "x": hdr.JWK["x"], "y": hdr.JWK["y"]})
	jkt := sha256.Sum256(tp)
	return b64(jkt[:]), nil
}

func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// proofError answers a refused proof: at the token endpoint a 400 with the
// error in the body, at a resource a 401 with WWW-Authenticate; a nonce
// challenge carries DPoP-Nonce.
func (s *Server) proofError(w http.ResponseWriter, err error, resource bool) {
	var de *dpopError
	if !errors.As(err, &de) {
		de = &dpopError{"invalid_dpop_proof", err.Error()}
	}
	if de.code == "use_dpop_nonce" {
		w.Header().Set("DPoP-Nonce", s.dpopNonce)
	}
	if resource {
		w.Header().Set("WWW-Authenticate", `DPoP error="`+de.code+`", error_description="`+de.desc+`", algs="ES256"`)
		oauthError(w, 401, de.code, de.desc)
		return
	}
	oauthError(w, 400, de.code, de.desc)
}

// SetDPoPNonce makes proofs need this nonce ("" for none).
func (s *Server) SetDPoPNonce(nonce string) {
	s.mu.Lock()
	s.dpopNonce = nonce
	s.mu.Unlock()
}

func (s *Server) setDPoPNonce(w http.ResponseWriter, r *http.Request) {
	s.SetDPoPNonce(r.URL.Query().Get("nonce"))
	w.WriteHeader(http.StatusNoContent)
}
