package dpop

import (
	"errors"
	"fmt"
)

// Error codes of RFC 9449 (§5, §7.1, §8, §9). A token endpoint answers both
// with status 400 in a JSON body; a resource server answers both with status
// 401 and a WWW-Authenticate: DPoP challenge.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Reasons a proof is refused. Every error Verify returns is an *Error whose
// Reason is one of these, so callers test with errors.Is.
var (
	ErrMissing     = errors.New("no DPoP proof")
	ErrMultiple    = errors.New("more than one DPoP proof")
	ErrMalformed   = errors.New("malformed DPoP proof")
	ErrType        = errors.New("DPoP proof typ is not dpop+jwt")
	ErrAlgorithm   = errors.New("DPoP proof alg not allowed")
	ErrKey         = errors.New("DPoP proof jwk unusable")
	ErrPrivateKey  = errors.New("DPoP proof jwk holds private key material")
	ErrSignature   = errors.New("DPoP proof signature invalid")
	ErrClaims      = errors.New("DPoP proof claims missing or malformed")
	ErrMethod      = errors.New("DPoP proof htm does not match the request method")
	ErrURL         = errors.New("DPoP proof htu does not match the request URL")
	ErrIssuedAt    = errors.New("DPoP proof iat outside the accepted window")
	ErrTokenHash   = errors.New("DPoP proof ath does not match the access token")
	ErrKeyMismatch = errors.New("DPoP proof key does not match the bound key")
	ErrReplay      = errors.New("DPoP proof jti already used")
	ErrNonce       = errors.New("DPoP proof nonce missing or stale")
)

// Error is a refused proof: Code is the RFC 9449 error code to answer with,
// Reason the sentinel above, Detail a short text safe to show the client.
type Error struct {
	Code   string
	Reason error
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code + ": " + e.Reason.Error()
	}
	return e.Code + ": " + e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason, so errors.Is(err, ErrReplay) works.
func (e *Error) Unwrap() error { return e.Reason }

// Description is the error_description to send: the reason and detail, no
// internal state.
func (e *Error) Description() string {
	if e.Detail == "" {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Detail
}

func refuse(reason error, format string, args ...any) *Error {
	code := CodeInvalidProof
	if reason == ErrNonce {
		code = CodeUseNonce
	}
	return &Error{Code: code, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Code returns the RFC 9449 error code err carries, or "" when err is not a
// proof error (a storage failure, say, which is the caller's 500 or 503).
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
