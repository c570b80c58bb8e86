package storage_test

import (
	"context"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestLinkIdentity: of two links of one upstream identity exactly one is
// created; the second is no error, and inside a transaction it leaves the
// transaction usable (Postgres aborts a transaction on a failed insert).
func TestLinkIdentity(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			ctx := context.Background()
			for _, id := range []string{"u1", "u2"} {
				if err := s.CreateUser(ctx, &storage.User{ID: id, Email: id + "@example.com"}); err != nil {
					t.Fatal(err)
				}
			}
			if won, err := s.LinkIdentity(ctx, &storage.Identity{ConnectorID: "okta", Subject: "s", UserID: "u1"}); err != nil || !won {
				t.Fatalf("first link: %v, %v", won, err)
			}
			tx, err := s.BeginTX(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if won, err := s.LinkIdentity(tx, &storage.Identity{ConnectorID: "okta", Subject: "s", UserID: "u2"}); err != nil || won {
				t.Fatalf("second link: %v, %v; want not created, no error", won, err)
			}
			if won, err := s.LinkIdentity(tx, &storage.Identity{ConnectorID: "okta", Subject: "t", UserID: "u2"}); err != nil || !won {
				t.Fatalf("a link in the same transaction after the lost one: %v, %v", won, err)
			}
			if err := s.Commit(tx); err != nil {
				t.Fatal(err)
			}
			if id, err := s.GetIdentity(ctx, "okta", "s"); err != nil || id.UserID != "u1" {
				t.Fatalf("identity s: %+v, %v; want u1's", id, err)
			}
			if _, err := s.GetIdentity(ctx, "okta", "t"); err != nil {
				t.Fatalf("identity t: %v", err)
			}
			if _, err := s.LinkIdentity(ctx, &storage.Identity{ConnectorID: "okta", Subject: "x"}); err == nil {
				t.Fatal("a link without a user was stored")
			}
		})
	}
}

// TestReplaceConnectorData: the rows still in clear are listed, and a
// replacement lands only on a row that still holds what was read.
func TestReplaceConnectorData(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			ctx := context.Background()
			if err := s.CreateUser(ctx, &storage.User{ID: "u1", Email: "u1@example.com"}); err != nil {
				t.Fatal(err)
			}
			for sub, data := range map[string]string{"clear": "refresh-token", "sealed": "SEALED:xyz", "none": ""} {
				id := &storage.Identity{ConnectorID: "okta", Subject: sub, UserID: "u1"}
				if data != "" {
					id.ConnectorData = []byte(data)
				}
				if err := s.CreateIdentity(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := s.IdentitiesWithConnectorDataNotPrefixed(ctx, []byte("SEALED:"))
			if err != nil || len(rows) != 1 || rows[0].Subject != "clear" || string(rows[0].ConnectorData) != "refresh-token" {
				t.Fatalf("rows in clear: %+v, %v; want only \"clear\"", rows, err)
			}
			if ok, err := s.ReplaceConnectorData(ctx, "okta", "clear", []byte("something else"), []byte("SEALED:1")); err != nil || ok {
				t.Fatalf("replace from a stale read: %v, %v; want not replaced", ok, err)
			}
			if ok, err := s.ReplaceConnectorData(ctx, "okta", "clear", []byte("refresh-token"), []byte("SEALED:1")); err != nil || !ok {
				t.Fatalf("replace: %v, %v", ok, err)
			}
			if id, err := s.GetIdentity(ctx, "okta", "clear"); err != nil || string(id.ConnectorData) != "SEALED:1" {
				t.Fatalf("after the replacement: %+v, %v", id, err)
			}
		})
	}
}
