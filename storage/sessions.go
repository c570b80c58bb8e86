package storage

import (
	"context"
	"fmt"
	"time"
)

// CreateBrowserSession stores a broker login session (CreatedAt defaults to
// now).
func (s *Store) CreateBrowserSession(ctx context.Context, bs *BrowserSession) error {
	if bs.ID == "" || bs.UserID == "" {
		return fmt.Errorf("storage: create browser session: id and user id are required")
	}
	if bs.AMR == nil {
		bs.AMR = []string{}
	}
	if bs.CreatedAt.IsZero() {
		bs.CreatedAt = now()
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(bs).Exec(ctx); err != nil {
		return s.wrap("create browser session", err)
	}
	return nil
}

// GetBrowserSession loads an unexpired browser session.
func (s *Store) GetBrowserSession(ctx context.Context, id string) (*BrowserSession, error) {
	bs := new(BrowserSession)
	err := s.reader(ctx).NewSelect().Model(bs).Where("id = ?", id).Where("expires_at > ?", time.Now().UTC()).Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("browser session", "…")
		}
		return nil, s.wrap("load browser session", err)
	}
	return bs, nil
}

// DeleteBrowserSession removes a browser session; an absent one is not an
// error.
func (s *Store) DeleteBrowserSession(ctx context.Context, id string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*BrowserSession)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return s.wrap("delete browser session", err)
	}
	return nil
}

// DeleteUserBrowserSessions removes every browser session of a user.
func (s *Store) DeleteUserBrowserSessions(ctx context.Context, userID string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*BrowserSession)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
		return s.wrap("delete browser sessions of a user", err)
	}
	return nil
}

// CreatePendingLogin stores an authorization request waiting for a login.
func (s *Store) CreatePendingLogin(ctx context.Context, p *PendingLogin) error {
	if p.ID == "" {
		return fmt.Errorf("storage: create pending login: empty id")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(p).Exec(ctx); err != nil {
		return s.wrap("create pending login", err)
	}
	return nil
}

// GetPendingLogin loads an unexpired pending login.
func (s *Store) GetPendingLogin(ctx context.Context, id string) (*PendingLogin, error) {
	p := new(PendingLogin)
	err := s.reader(ctx).NewSelect().Model(p).Where("id = ?", id).Where("expires_at > ?", time.Now().UTC()).Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("pending login", "…")
		}
		return nil, s.wrap("load pending login", err)
	}
	return p, nil
}

// UpdatePendingLogin replaces a pending login's stored fields.
func (s *Store) UpdatePendingLogin(ctx context.Context, p *PendingLogin) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model(p).WherePK().Exec(ctx)
	if err != nil {
		return s.wrap("update pending login", err)
	}
	return expectRow(res, "pending login", "…")
}

// TakePendingLogin loads and deletes a pending login in one statement: of
// concurrent callers exactly one gets it. An expired one is deleted too,
// and reported as ErrNotFound.
func (s *Store) TakePendingLogin(ctx context.Context, id string) (*PendingLogin, error) {
	return s.takePendingLogin(ctx, id, nil)
}

// TakeBoundPendingLogin is TakePendingLogin for the browser whose binding
// (BrowserBinding) is given: a pending login of another browser is left
// alone and reported as ErrNotFound, as is any pending login when binding
// is empty.
func (s *Store) TakeBoundPendingLogin(ctx context.Context, id, binding string) (*PendingLogin, error) {
	if binding == "" {
		return nil, notFound("pending login", "…")
	}
	return s.takePendingLogin(ctx, id, &binding)
}

func (s *Store) takePendingLogin(ctx context.Context, id string, binding *string) (*PendingLogin, error) {
	var taken []PendingLogin
	db, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	q := db.NewDelete().Model(&taken).Where("id = ?", id)
	if binding != nil {
		q = q.Where("browser_binding = ?", *binding)
	}
	err = q.Returning("*").Scan(ctx)
	if err != nil && classify(err) != ErrNotFound {
		return nil, s.wrap("take pending login", err)
	}
	if len(taken) == 0 || !taken[0].ExpiresAt.After(time.Now()) {
		return nil, notFound("pending login", "…")
	}
	return &taken[0], nil
}

// RecordUpstreamState records, in one statement, that the pending login id
// of the browser binding went to connector connectorID with the state whose
// hash is stateHash, and the connector's own state. It fails with
// ErrNotFound when the pending login is not this browser's (or binding is
// empty), has expired or is gone.
func (s *Store) RecordUpstreamState(ctx context.Context, id, binding, connectorID, stateHash string, connectorState []byte) error {
	if binding == "" {
		return notFound("pending login", "…")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*PendingLogin)(nil)).
		Set("connector_id = ?", connectorID).
		Set("upstream_state_hash = ?", stateHash).
		Set("connector_state = ?", connectorState).
		Where("id = ?", id).
		Where("browser_binding = ?", binding).
		Where("expires_at > ?", time.Now().UTC()).
		Exec(ctx)
	if err != nil {
		return s.wrap("record upstream state", err)
	}
	return expectRow(res, "pending login", "…")
}

// ClaimUpstreamState uses up the upstream state of a pending login in one
// statement and returns the pending login: it clears the state hash when
// the pending login id belongs to the browser binding, went to connector
// connectorID with the state whose hash is stateHash, and has not expired.
// Of concurrent callers with the same state exactly one gets it; the others,
// and every mismatch, get ErrNotFound (the caller tells them apart by
// reading the pending login). The connector state is returned, and kept
// until the pending login is taken: without the state it is of no use.
func (s *Store) ClaimUpstreamState(ctx context.Context, id, binding, connectorID, stateHash string) (*PendingLogin, error) {
	if binding == "" || connectorID == "" || stateHash == "" {
		return nil, notFound("pending login", "…")
	}
	p := new(PendingLogin)
	db, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	err = db.NewUpdate().Model(p).
		Set("upstream_state_hash = ''").
		Where("id = ?", id).
		Where("browser_binding = ?", binding).
		Where("connector_id = ?", connectorID).
		Where("upstream_state_hash = ?", stateHash).
		Where("expires_at > ?", time.Now().UTC()).
		Returning("*").
		Scan(ctx)
	if err != nil {
		if classify(err) == ErrNotFound {
			return nil, notFound("pending login", "…")
		}
		return nil, s.wrap("claim upstream state", err)
	}
	return p, nil
}
