package broker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ory/fosite"
)

// fosite re-reads the code when it builds the token response and calls a
// code invalidated meanwhile (by a concurrent exchange) a server error; the
// loser of that race must get invalid_grant, not a 500. Other server
// errors stay server errors.
func TestLostRaceIsInvalidGrant(t *testing.T) {
	race := fosite.ErrServerError.WithWrap(fmt.Errorf("storage: authorize code: %w", fosite.ErrInvalidatedAuthorizeCode))
	var rfc *fosite.RFC6749Error
	if err := lostRace(race); !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" {
		t.Errorf("lost code race: %v, want invalid_grant", err)
	}
	rotated := fosite.ErrServerError.WithWrap(fmt.Errorf("storage: refresh token: %w", fosite.ErrInactiveToken))
	if err := lostRace(rotated); !errors.As(err, &rfc) || rfc.ErrorField != "invalid_grant" {
		t.Errorf("lost refresh race: %v, want invalid_grant", err)
	}
	other := fosite.ErrServerError.WithWrap(errors.New("disk full"))
	if err := lostRace(other); !errors.As(err, &rfc) || rfc.ErrorField != "server_error" {
		t.Errorf("other failure: %v, want server_error", err)
	}
	refused := fosite.ErrInvalidRequest.WithHint("bad")
	if err := lostRace(refused); !errors.Is(err, fosite.ErrInvalidRequest) {
		t.Errorf("protocol error changed: %v", err)
	}
}
