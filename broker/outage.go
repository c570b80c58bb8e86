package broker

import (
	"errors"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// serverError is the error for a request that failed on the server side:
// temporarily_unavailable when the database could not be reached (RFC 6749
// section 4.1.2.1 defines it for the redirect, where no 503 can travel),
// else server_error.
func serverError(err error) error {
	if down := outage(err); down != nil {
		return down
	}
	return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
}

// outage is the answer for a request that failed on storage.ErrUnavailable
// (nil when err is something else).
func outage(err error) error {
	if !errors.Is(err, storage.ErrUnavailable) {
		return nil
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(err.Error()).
		WithHint("The authorization server cannot reach its database right now; try again shortly.")
}
