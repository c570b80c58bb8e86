package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// switchableCheck is a RefreshCheck whose answer the test changes.
type switchableCheck struct {
	mu    sync.Mutex
	err   error
	calls []string
}

func (c *switchableCheck) check(_ context.Context, userID, idp string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, userID+" "+idp)
	return c.err
}

func (c *switchableCheck) set(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func TestRefreshCheck(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		chk := &switchableCheck{}
		e := newTestEnv(t, b, func(c *Config) { c.RefreshCheck = chk.check })
		ar := spaAuth()
		first := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		if len(chk.calls) != 0 {
			t.Fatalf("check called on the code exchange: %q", chk.calls)
		}

		// The upstream cannot be reached: try again later, nothing lost.
		chk.set(fmt.Errorf("upstream: %w", errors.New("connection refused")))
		tr := e.refresh(first.RefreshToken)
		if tr.Error != "temporarily_unavailable" || (tr.status != http.StatusServiceUnavailable && tr.status != http.StatusBadRequest) {
			t.Fatalf("outage: %d %q, want 503 (or 400) temporarily_unavailable", tr.status, tr.Error)
		}
		if len(chk.calls) != 1 || chk.calls[0] != e.user.ID+" local" {
			t.Errorf("check calls %q, want [%s local]", chk.calls, e.user.ID)
		}
		chk.set(nil)
		second := mustOK(t, e.refresh(first.RefreshToken))
		if !e.active(second.AccessToken) {
			t.Fatal("access token of the refresh after the outage is inactive")
		}

		// The upstream revoked the identity: the grant ends.
		chk.set(fmt.Errorf("account deleted upstream: %w", connectors.ErrIdentityRevoked))
		wantTokenError(t, e.refresh(second.RefreshToken), http.StatusBadRequest, "invalid_grant")
		chk.set(nil) // even if the upstream changes its mind, the grant stays ended
		wantTokenError(t, e.refresh(second.RefreshToken), http.StatusBadRequest, "invalid_grant")
		if e.active(second.AccessToken) {
			t.Error("the grant's access token is still active after the identity was revoked")
		}

		// Other grants of the same user are checked on their own refresh.
		ar2 := spaAuth()
		other := mustOK(t, e.exchange(e.browser().loginForCode(ar2), ar2))
		mustOK(t, e.refresh(other.RefreshToken))
	})
}

func TestRefreshChecksTheUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ar := spaAuth()
		tr := mustOK(t, e.exchange(e.browser().loginForCode(ar), ar))
		ctx := t.Context()

		u, err := e.store.GetUser(ctx, e.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		u.Name = "Alice Pleasance Liddell"
		if err := e.store.SetUserProfile(ctx, u.ID, storage.UserProfile{Name: u.Name}); err != nil {
			t.Fatal(err)
		}
		tr = mustOK(t, e.refresh(tr.RefreshToken))
		if _, id := e.verifyJWT(tr.IDToken); id["name"] != u.Name || id["idp"] != "local" {
			t.Errorf("refreshed ID token has stale claims: %v", id)
		}

		if err := e.store.SetUserDisabled(ctx, u.ID, true); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, e.refresh(tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	})
}

// Disabling a user revokes their codes; a login that read the user just
// before the disable can still write its code just after. The exchange
// checks the user too: such a code gets invalid_grant, and stays dead
// even once the user is enabled again (the refused exchange spent its
// PKCE data, as any refused exchange does). A fresh login then works.
func TestCodeExchangeChecksTheUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ctx := t.Context()
		ar := spaAuth()
		code := e.browser().loginForCode(ar)
		// The disable commits after the code was written, as in the race:
		// only the flag, not the revocation that ran before the code.
		if err := e.store.SetUserDisabled(ctx, e.user.ID, true); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			wantTokenError(t, e.exchange(code, ar), http.StatusBadRequest, "invalid_grant")
		}
		if err := e.store.SetUserDisabled(ctx, e.user.ID, false); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, e.exchange(code, ar), http.StatusBadRequest, "invalid_grant")
		again := spaAuth()
		mustOK(t, e.exchange(e.browser().loginForCode(again), again))
	})
}
