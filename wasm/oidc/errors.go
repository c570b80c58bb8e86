package oidc

import "errors"

// Error codes carried by *Error. OAuth error codes from the broker
// (invalid_grant, access_denied, …) are passed through as they are.
const (
	// CodeLoginRequired: there is no usable session; the user must log in.
	CodeLoginRequired = "login_required"
	// CodeNetwork: the broker could not be reached.
	CodeNetwork = "network_error"
	// CodeBrokerDown: the broker answered with a server error (5xx).
	CodeBrokerDown = "broker_unavailable"
	// CodeInvalidResponse: the broker's answer was not what the protocol expects.
	CodeInvalidResponse = "invalid_response"
	// CodeInvalidIDToken: the ID token failed signature or claim checks.
	CodeInvalidIDToken = "invalid_id_token"
	// CodeStateMismatch: a callback whose state this client never issued.
	CodeStateMismatch = "state_mismatch"
	// CodeConfig: the client configuration is incomplete or invalid.
	CodeConfig = "invalid_config"
	// CodeDPoPKey: the DPoP key could not be read, made or used.
	CodeDPoPKey = "dpop_key_unavailable"
	// CodeDPoPOff: a DPoP proof was asked for but the session's tokens are
	// not DPoP-bound (DPoP is off, or the broker does not offer it).
	CodeDPoPOff = "dpop_not_in_use"
)

// Error is the error type of this package. Code is one of the Code constants
// or an OAuth error code returned by the broker.
type Error struct {
	Code        string
	Description string
	Err         error
}

func (e *Error) Error() string {
	msg := "oidc: " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the Code of the *Error in err's chain, or "" if there is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(code, description string, err error) *Error {
	return &Error{Code: code, Description: description, Err: err}
}

// isTransient reports whether err means "try again later" rather than "the
// session is gone".
func isTransient(err error) bool {
	switch ErrorCode(err) {
	case CodeNetwork, CodeBrokerDown, CodeInvalidResponse, CodeDPoPKey, "temporarily_unavailable", "server_error":
		return true
	}
	return false
}
