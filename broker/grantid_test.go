package broker

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// Grants get time-ordered ids (setGrantID): the tokens of a code flow and
// of a client_credentials grant are stored under a UUIDv7 minted while the
// grant was made, so the request_id index grows at its end.
func TestGrantIDsAreTimeOrdered(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	before := time.Now().Add(-time.Second)
	ar := spaAuth()
	mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
	mustOK(t, e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, apiID, apiSecret))
	after := time.Now().Add(time.Second)

	for _, col := range []string{"access_tokens.request_id", "refresh_tokens.request_id"} {
		ids := storagetest.Dump(t, e.store)[col]
		if len(ids) == 0 {
			t.Fatalf("no %s", col)
		}
		for _, raw := range ids {
			id, err := uuid.ParseBytes(raw)
			if err != nil || id.Version() != 7 {
				t.Errorf("%s %s: version %d (%v), want a UUIDv7", col, raw, id.Version(), err)
				continue
			}
			sec, nsec := id.Time().UnixTime()
			if at := time.Unix(sec, nsec); at.Before(before) || at.After(after) {
				t.Errorf("%s %s: minted at %v, not while the grant was made (%v – %v)", col, raw, at, before, after)
			}
		}
	}
}
