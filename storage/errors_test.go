package storage_test

import (
	"errors"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// A database that cannot be reached is ErrUnavailable, never "not found"
// (which would tell a valid client it is unknown) and never a bare error.
func TestClosedDatabaseIsUnavailable(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := s.GetClient(t.Context(), "some-client")
			if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("GetClient on a closed database: %v, want ErrUnavailable", err)
			}
			if _, err := s.GetUserByEmail(t.Context(), "a@example.com"); !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("GetUserByEmail on a closed database: %v, want ErrUnavailable", err)
			}
		})
	}
}
