// Package jwsig checks the signature of a compact JWS with the standard
// library, for the asymmetric algorithms Bridgekeeper accepts (RS, PS, ES
// 256/384/512 and EdDSA): rp/ for access tokens, internal/dpop for DPoP
// proofs. The caller has matched the key to the algorithm; a key of another
// kind simply fails.
package jwsig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"math/big"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// ErrSignature is Verify's answer to a signature that does not verify.
var ErrSignature = errors.New("signature does not verify")

// Hash returns the hash of an asymmetric JWS algorithm (0 for EdDSA); ok is
// false for every other algorithm, none and HMAC included.
func Hash(alg jose.SignatureAlgorithm) (h crypto.Hash, ok bool) {
	switch alg {
	case jose.RS256, jose.PS256, jose.ES256:
		return crypto.SHA256, true
	case jose.RS384, jose.PS384, jose.ES384:
		return crypto.SHA384, true
	case jose.RS512, jose.PS512, jose.ES512:
		return crypto.SHA512, true
	case jose.EdDSA:
		return 0, true
	}
	return 0, false
}

// Verify checks sig, the decoded signature of a JWS, over input (its
// header "." payload) with key — *rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey — under alg.
func Verify(alg jose.SignatureAlgorithm, key any, input string, sig []byte) error {
	if alg == jose.EdDSA {
		pub, ok := key.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(pub, []byte(input), sig) {
			return ErrSignature
		}
		return nil
	}
	hash, ok := Hash(alg)
	if !ok {
		return ErrSignature
	}
	var digest []byte
	switch hash {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(input))
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(input))
		digest = d[:]
	default:
		d := sha512.Sum512([]byte(input))
		digest = d[:]
	}
	switch pub := key.(type) {
	case *rsa.PublicKey:
		switch {
		case strings.HasPrefix(string(alg), "RS"):
			return rsa.VerifyPKCS1v15(pub, hash, digest, sig)
		case strings.HasPrefix(string(alg), "PS"):
			return rsa.VerifyPSS(pub, hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		if strings.HasPrefix(string(alg), "ES") && len(sig) == 2*size &&
			ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])) {
			return nil
		}
	}
	return ErrSignature
}
