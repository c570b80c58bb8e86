package storage

import (
	"context"
	"fmt"
)

// ReplacePasswordHash sets the password hash of user id to newHash if it is
// still oldHash, so a password changed meanwhile is never overwritten (the
// broker re-hashes a password made with old parameters after a login). It
// leaves UpdatedAt alone: the profile did not change. ErrNotFound means the
// user is gone or the hash changed.
func (s *Store) ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string) error {
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewUpdate().Model((*User)(nil)).
		Set("password_hash = ?", newHash).
		Where("id = ?", id).Where("password_hash = ?", oldHash).
		Exec(ctx)
	if err != nil {
		return s.wrap(fmt.Sprintf("replace password hash of user %q", id), err)
	}
	return expectRow(res, "user with this password hash", id)
}
