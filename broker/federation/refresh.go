package federation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Refresh re-checks a federated user upstream, for the broker's refresh
// grant: idp is the connector the user logged in through (the session's
// idp). It calls the connector's Refresh with the stored identity and saves
// what comes back (connector data included: upstream refresh tokens
// rotate; the profile of a user without a local password, as at login). The error wraps connectors.ErrIdentityRevoked when the user is
// gone or disabled upstream, or the link to the upstream identity is gone:
// the grant must end (invalid_grant). Other errors (upstream or plugin down)
// say nothing about the user. An idp that names no configured connector
// ("local", or a connector removed from the configuration) passes.
func (f *Federation) Refresh(ctx context.Context, userID, idp string) error {
	return f.refresh(ctx, userID, idp, "", false)
}

// errCannotRecheck: the identity cannot be re-checked upstream (the
// connector has no Refresh, or the identity nothing to refresh with).
var errCannotRecheck = errors.New("the identity cannot be re-checked upstream")

// SessionCheck is the broker's session re-check (broker.SessionCheck):
// before a federated browser session is reused silently, the identity it
// came from is re-checked upstream when the session's last check is older
// than Config.RecheckInterval. A session whose connector cannot re-check it
// (no Refresh, or no connector data such as an upstream refresh token) is
// not reused once its check is due: the user goes through the upstream,
// whose own session signs a valid user in again. A connector no longer
// configured passes, as on the refresh grant.
func (f *Federation) SessionCheck(ctx context.Context, bs *storage.BrowserSession) error {
	c := f.connectors[bs.IDP]
	if c == nil {
		return nil
	}
	if f.cfg.RecheckInterval > 0 && time.Since(bs.LastChecked()) < f.cfg.RecheckInterval {
		return nil
	}
	if err := f.refresh(ctx, bs.UserID, bs.IDP, bs.IDPSubject, true); err != nil {
		return err
	}
	if err := f.cfg.Store.MarkBrowserSessionChecked(ctx, bs.ID, time.Now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		f.log.WarnContext(ctx, "record session re-check", "connector", bs.IDP, "err", err)
	}
	return nil
}

// refresh is Refresh for the identity subject of connector idp ("": the
// one the user last logged in with). strict (the session re-check) fails
// with errCannotRecheck where Refresh passes: no Refresh capability, or no
// connector data to refresh with.
func (f *Federation) refresh(ctx context.Context, userID, idp, subject string, strict bool) error {
	c := f.connectors[idp]
	if c == nil {
		return nil
	}
	rc, ok := c.conn.(connectors.RefreshConnector)
	if !ok {
		if strict {
			return fmt.Errorf("connector %s: %w", idp, errCannotRecheck)
		}
		return nil
	}
	// One refresh per user and connector at a time in this process:
	// upstream refresh tokens rotate, and two concurrent uses of one would
	// look like a revocation.
	unlock := f.refreshLocks.lock(idp + "\x00" + userID)
	defer unlock()
	links, err := f.cfg.Store.ListIdentities(ctx, userID)
	if err != nil {
		return fmt.Errorf("refresh: list identities: %w", err)
	}
	// The identity of this connector the user last logged in with.
	var link *storage.Identity
	for i := range links {
		if links[i].ConnectorID != idp || (subject != "" && links[i].Subject != subject) {
			continue
		}
		if link == nil || links[i].LastLoginAt.After(link.LastLoginAt) {
			link = &links[i]
		}
	}
	if link == nil {
		f.warnRevoked(ctx, idp, userID, "the user has no identity of this connector any more", nil)
		return fmt.Errorf("refresh: user %s has no %s identity: %w", userID, idp, connectors.ErrIdentityRevoked)
	}
	if strict && len(link.ConnectorData) == 0 {
		return fmt.Errorf("connector %s: no connector data: %w", idp, errCannotRecheck)
	}
	// What this refresh starts from: the stored connector data, or the
	// newer data of a refresh whose save failed.
	stored := *link
	link.ConnectorData = f.unsaved.newest(link)
	ident, err := f.identityOf(link)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	next, err := f.refreshUpstream(ctx, rc, idp, ident)
	if err != nil {
		if errors.Is(err, connectors.ErrIdentityRevoked) && f.refreshedElsewhere(ctx, &stored) {
			// Another replica refreshed this identity upstream while we
			// did (the lock above is per process): the upstream rotated
			// the refresh token we used, which looks like a revocation
			// but only means the other refresh won. The user is fine.
			f.log.DebugContext(ctx, "upstream refresh lost a race to another replica", "connector", idp, "user", userID)
			return nil
		}
		if errors.Is(err, connectors.ErrIdentityRevoked) {
			f.warnRevoked(ctx, idp, userID, "the upstream refused the identity", err)
		}
		return fmt.Errorf("refresh: %w", err)
	}
	if next.Subject != link.Subject {
		f.warnRevoked(ctx, idp, userID, "the upstream answered for another subject", nil)
		return fmt.Errorf("refresh: the connector answered for another subject: %w", connectors.ErrIdentityRevoked)
	}
	claims, err := claimsOf(next)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	link.Email, link.EmailVerified, link.Claims = next.Email, next.EmailVerified, claims
	// The new connector data, encrypted; the old data is encrypted too
	// when it was written in clear (before the broker encrypted it).
	if data := next.ConnectorData; data != nil || !isSealed(link.ConnectorData) {
		if data == nil {
			data = ident.ConnectorData
		}
		if link.ConnectorData, err = f.sealData(link.ConnectorID, link.Subject, data); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
	}
	if err := f.cfg.Store.UpsertIdentity(ctx, link); err != nil {
		// The upstream may have rotated its refresh token: keep the new
		// one for the next refresh, which retries the save.
		f.unsaved.keep(link, stored.ConnectorData)
		return fmt.Errorf("refresh: save identity: %w", err)
	}
	f.unsaved.saved(link)
	user, err := f.cfg.Store.GetUser(ctx, userID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		f.warnRevoked(ctx, idp, userID, "the user is gone", nil)
		return fmt.Errorf("refresh: user %s is gone: %w", userID, connectors.ErrIdentityRevoked)
	case err != nil:
		return fmt.Errorf("refresh: load user: %w", err)
	}
	f.syncProfile(ctx, user, next)
	return nil
}

// refreshAttempts bounds the calls refreshUpstream makes.
const refreshAttempts = 3

// refreshUpstream calls the connector's Refresh with the stored identity.
// A plugin process that dies during the call (plugins.ErrPluginUnavailable)
// may have had the upstream's answer already: upstreams such as Okta
// rotate the refresh token on every use, and the new token died with the
// process. So the call is made again, with the same stored identity, on
// the relaunched plugin, while the upstream still accepts the token it has
// just rotated (Okta keeps it usable for its grace period, 30 s by
// default, up to 60 s); refresh then saves what it answers before the
// broker's grant goes on. An upstream with no such grace refuses the
// retry, and the grant ends as after any revocation.
func (f *Federation) refreshUpstream(ctx context.Context, rc connectors.RefreshConnector, idp string, ident connectors.Identity) (connectors.Identity, error) {
	for attempt := 1; ; attempt++ {
		next, err := rc.Refresh(ctx, connectors.Scopes{OfflineAccess: true}, ident)
		if !errors.Is(err, plugins.ErrPluginUnavailable) || attempt == refreshAttempts || ctx.Err() != nil {
			return next, err
		}
		f.log.WarnContext(ctx, "connector plugin died during an upstream refresh; retrying with the stored identity",
			"connector", idp, "attempt", attempt, "err", err)
	}
}

// warnRevoked logs, at WARN, that an upstream re-check (the refresh grant's
// or a session's) found the identity revoked: the caller ends the grants
// and sessions that came from it. reason says why, err is the connector's
// answer (nil when the broker concluded it itself).
func (f *Federation) warnRevoked(ctx context.Context, idp, userID, reason string, err error) {
	args := []any{"connector", idp, "user", userID, "reason", reason}
	if err != nil {
		args = append(args, "err", err)
	}
	f.log.WarnContext(ctx, "upstream revoked the identity: its grants end", args...)
}

// refreshedElsewhere reports whether the stored connector data of link
// changed since it was read: another process refreshed it upstream.
// The other refresh may have its upstream answer but not have saved it
// yet, so a real revocation is only concluded after a short grace (a
// revocation is rare; a wrongly ended grant logs the user out).
func (f *Federation) refreshedElsewhere(ctx context.Context, link *storage.Identity) bool {
	const tries, pause = 5, 100 * time.Millisecond
	for i := range tries {
		now, err := f.cfg.Store.GetIdentity(ctx, link.ConnectorID, link.Subject)
		if err == nil && now.UserID == link.UserID && !bytes.Equal(now.ConnectorData, link.ConnectorData) {
			return true
		}
		if i == tries-1 {
			break
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pause):
		}
	}
	return false
}

// identityOf rebuilds a connector identity from its stored link, its
// connector data in clear.
func (f *Federation) identityOf(link *storage.Identity) (connectors.Identity, error) {
	var c storedClaims
	if len(link.Claims) > 0 {
		if err := json.Unmarshal(link.Claims, &c); err != nil {
			return connectors.Identity{}, fmt.Errorf("stored claims of %s/%s: %w", link.ConnectorID, link.Subject, err)
		}
	}
	data, err := f.openData(link.ConnectorID, link.Subject, link.ConnectorData)
	if err != nil {
		return connectors.Identity{}, err
	}
	return connectors.Identity{
		Subject:       link.Subject,
		Email:         link.Email,
		EmailVerified: link.EmailVerified,
		Name:          c.Name,
		GivenName:     c.GivenName,
		FamilyName:    c.FamilyName,
		Picture:       c.Picture,
		Groups:        c.Groups,
		Claims:        c.Extra,
		ConnectorData: data,
	}, nil
}

// unsavedData holds, per identity, the connector data of the latest
// refresh whose save failed (the database restarting, say), sealed, with
// the stored data it replaces. The upstream has rotated the refresh token
// in the stored data by then; the next refresh of the identity in this
// process starts from the held data, and its save puts an end to it.
// Another process, or a connector data stored meanwhile (a new login),
// starts from what is stored.
type unsavedData struct {
	mu sync.Mutex
	m  map[string]unsaved
}

type unsaved struct{ data, replaces []byte }

func identityKey(id *storage.Identity) string { return id.ConnectorID + "\x00" + id.Subject }

// newest is the connector data a refresh of id starts from.
func (u *unsavedData) newest(id *storage.Identity) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	held, ok := u.m[identityKey(id)]
	if !ok {
		return id.ConnectorData
	}
	if !bytes.Equal(held.replaces, id.ConnectorData) {
		delete(u.m, identityKey(id)) // something newer was stored
		return id.ConnectorData
	}
	return held.data
}

// keep holds id's connector data, whose save failed, over what is stored.
func (u *unsavedData) keep(id *storage.Identity, stored []byte) {
	if bytes.Equal(id.ConnectorData, stored) {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]unsaved{}
	}
	u.m[identityKey(id)] = unsaved{data: id.ConnectorData, replaces: stored}
}

// saved ends what was held for id: its connector data is stored.
func (u *unsavedData) saved(id *storage.Identity) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, identityKey(id))
}

// keyedMutex serialises work per key.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the lock of key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
