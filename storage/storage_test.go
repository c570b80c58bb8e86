package storage_test

import (
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/conformance"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

func TestConformance(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			conformance.Run(t, func(t *testing.T) *storage.Store {
				s, _ := b.Open(t)
				return s
			})
		})
	}
}
