package broker

import (
	"github.com/google/uuid"
	"github.com/ory/fosite"
)

// setGrantID gives a new grant (an authorization request, a
// client_credentials request) a time-ordered id, a UUIDv7, in place of
// fosite's random UUIDv4. Every token of the grant is stored under it
// (its request_id), and indexed by it for revocation: ids that grow with
// time append to that index, where random ones dirty a page anywhere in
// it for every token issued. The 74 random bits keep ids unguessable; the
// id is no credential either way.
func setGrantID(ar fosite.Requester) {
	if id, err := uuid.NewV7(); err == nil {
		ar.SetID(id.String())
	} // else: fosite's random id stays
}
