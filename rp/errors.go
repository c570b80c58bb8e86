package rp

import (
	"errors"
	"fmt"
)

// ErrInvalidToken is matched (errors.Is) by every error Verify returns for a
// token that is not acceptable. The more precise errors below wrap it.
var ErrInvalidToken = errors.New("invalid token")

// Reasons a token is refused. Each wraps ErrInvalidToken.
var (
	ErrMalformed      = fmt.Errorf("%w: malformed", ErrInvalidToken)
	ErrTokenType      = fmt.Errorf("%w: wrong token type", ErrInvalidToken)
	ErrUnknownKey     = fmt.Errorf("%w: unknown signing key", ErrInvalidToken)
	ErrAlgorithm      = fmt.Errorf("%w: algorithm not allowed for key", ErrInvalidToken)
	ErrSignature      = fmt.Errorf("%w: bad signature", ErrInvalidToken)
	ErrIssuer         = fmt.Errorf("%w: wrong issuer", ErrInvalidToken)
	ErrAudience       = fmt.Errorf("%w: wrong audience", ErrInvalidToken)
	ErrExpired        = fmt.Errorf("%w: expired", ErrInvalidToken)
	ErrNotYetValid    = fmt.Errorf("%w: not valid yet", ErrInvalidToken)
	ErrIssuedInFuture = fmt.Errorf("%w: issued in the future", ErrInvalidToken)

	// DPoP (RFC 9449): a bound token presented as a bearer token; a token
	// presented with DPoP, or required to be, that is not bound; a proof
	// signed by another key than the one the token is bound to.
	ErrTokenBound = fmt.Errorf("%w: DPoP-bound token presented as Bearer", ErrInvalidToken)
	ErrNotBound   = fmt.Errorf("%w: not DPoP-bound", ErrInvalidToken)
	ErrKeyBinding = fmt.Errorf("%w: DPoP proof signed by another key", ErrInvalidToken)
)

// ErrInvalidProof is matched by every refusal of a DPoP proof (error
// invalid_dpop_proof), ErrUseNonce by a proof without the current server
// nonce (use_dpop_nonce). The errors wrap the precise reason too.
var (
	ErrInvalidProof = errors.New("invalid DPoP proof")
	ErrUseNonce     = errors.New("DPoP nonce required")
)

// ErrKeysUnavailable means the token names a key the verifier does not have
// and the issuer's JWKS could not be fetched: the token may well be valid.
// The middleware answers 503 for it.
var ErrKeysUnavailable = errors.New("signing keys unavailable")
