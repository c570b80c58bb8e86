package storage

import "context"

// MigrateTo applies the pending migrations up to version last (tests of
// upgrades from an earlier schema).
func (s *Store) MigrateTo(ctx context.Context, last int) error { return s.migrate(ctx, last) }

// AccessKey is accessKey.
var AccessKey = accessKey
