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
)

// ErrKeysUnavailable means the token names a key the verifier does not have
// and the issuer's JWKS could not be fetched: the token may well be valid.
// The middleware answers 503 for it.
var ErrKeysUnavailable = errors.New("signing keys unavailable")
