package storage

import (
	"context"
	"fmt"
	"time"
)

// ListSigningKeys returns every signing key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var keys []SigningKey
	if err := s.reader(ctx).NewSelect().Model(&keys).Order("created_at", "kid").Scan(ctx); err != nil {
		return nil, s.wrap("list signing keys", err)
	}
	return keys, nil
}

// CreateSigningKey stores a new signing key; ErrConflict when the kid
// exists.
func (s *Store) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	if k.KID == "" {
		return fmt.Errorf("storage: create signing key: empty kid")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(k).Exec(ctx); err != nil {
		return s.wrap(fmt.Sprintf("create signing key %q", k.KID), err)
	}
	return nil
}

// UpdateSigningKey replaces a signing key's stored fields.
func (s *Store) UpdateSigningKey(ctx context.Context, k *SigningKey) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model(k).WherePK().Exec(ctx)
	if err != nil {
		return s.wrap(fmt.Sprintf("update signing key %q", k.KID), err)
	}
	return expectRow(res, "signing key", k.KID)
}

// RetireSigningKey sets RetiredAt and RemoveAt of a key that is not retired
// yet. It reports false when the key was already retired (another replica
// won) and ErrNotFound when there is no such key.
func (s *Store) RetireSigningKey(ctx context.Context, kid string, retiredAt, removeAt time.Time) (bool, error) {
	db, err := s.writer(ctx)
	if err != nil {
		return false, err
	}
	res, err := db.NewUpdate().Model((*SigningKey)(nil)).
		Set("retired_at = ?", retiredAt.UTC()).
		Set("remove_at = ?", removeAt.UTC()).
		Where("kid = ?", kid).
		Where("retired_at IS NULL").
		Exec(ctx)
	if err != nil {
		return false, s.wrap(fmt.Sprintf("retire signing key %q", kid), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("storage: retire signing key %q: %w", kid, err)
	}
	if n == 1 {
		return true, nil
	}
	exists, err := db.NewSelect().Model((*SigningKey)(nil)).Where("kid = ?", kid).Exists(ctx)
	if err != nil {
		return false, s.wrap(fmt.Sprintf("retire signing key %q", kid), err)
	}
	if !exists {
		return false, notFound("signing key", kid)
	}
	return false, nil
}

// DeleteSigningKey removes a signing key; an absent one is not an error.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	if _, err := db.NewDelete().Model((*SigningKey)(nil)).Where("kid = ?", kid).Exec(ctx); err != nil {
		return s.wrap(fmt.Sprintf("delete signing key %q", kid), err)
	}
	return nil
}
