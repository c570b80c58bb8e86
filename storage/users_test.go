package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestRecordIdentityLogin: a login of a linked identity updates what the
// upstream said and reports the link's user; an unlinked one is not found
// and creates nothing.
func TestRecordIdentityLogin(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			if err := s.CreateUser(ctx, &storage.User{ID: "u1", Active: true}); err != nil {
				t.Fatal(err)
			}
			created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			if err := s.CreateIdentity(ctx, &storage.Identity{ConnectorID: "okta", Subject: "s1", UserID: "u1",
				Email: "old@example.com", Claims: []byte(`{"name":"Old"}`), ConnectorData: []byte("rt-old"),
				CreatedAt: created, LastLoginAt: created}); err != nil {
				t.Fatal(err)
			}

			login := time.Now().UTC().Truncate(time.Second)
			id := &storage.Identity{ConnectorID: "okta", Subject: "s1", Email: "new@example.com", EmailVerified: true,
				Claims: []byte(`{"name":"New"}`), ConnectorData: nil, LastLoginAt: login}
			if err := s.RecordIdentityLogin(ctx, id); err != nil {
				t.Fatal(err)
			}
			if id.UserID != "u1" || !id.CreatedAt.Equal(created) {
				t.Errorf("filled in user %q, created %v; want u1, %v", id.UserID, id.CreatedAt, created)
			}
			got, err := s.GetIdentity(ctx, "okta", "s1")
			if err != nil {
				t.Fatal(err)
			}
			if got.UserID != "u1" || got.Email != "new@example.com" || !got.EmailVerified || string(got.Claims) != `{"name":"New"}` ||
				got.ConnectorData != nil || !got.LastLoginAt.Equal(login) || !got.CreatedAt.Equal(created) {
				t.Errorf("after the login: %+v", got)
			}

			// A caller that names the user records the login only while the
			// link is that user's, and gets nothing read back.
			again := login.Add(time.Minute)
			err = s.RecordIdentityLogin(ctx, &storage.Identity{ConnectorID: "okta", Subject: "s1", UserID: "u2",
				Email: "other@example.com", LastLoginAt: again})
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("login recorded for another user: %v, want ErrNotFound", err)
			}
			if got, err := s.GetIdentity(ctx, "okta", "s1"); err != nil || got.Email != "new@example.com" || !got.LastLoginAt.Equal(login) {
				t.Errorf("a refused login changed the link: %+v, %v", got, err)
			}
			named := &storage.Identity{ConnectorID: "okta", Subject: "s1", UserID: "u1", Email: "newer@example.com",
				ConnectorData: []byte("rt-new"), LastLoginAt: again}
			if err := s.RecordIdentityLogin(ctx, named); err != nil {
				t.Fatalf("login of the named user: %v", err)
			}
			if got, err := s.GetIdentity(ctx, "okta", "s1"); err != nil || got.Email != "newer@example.com" ||
				string(got.ConnectorData) != "rt-new" || !got.LastLoginAt.Equal(again) || got.UserID != "u1" {
				t.Errorf("after the named user's login: %+v, %v", got, err)
			}

			for _, key := range [][2]string{{"okta", "s2"}, {"google", "s1"}, {"okta", "bad\x00"}} {
				err := s.RecordIdentityLogin(ctx, &storage.Identity{ConnectorID: key[0], Subject: key[1], LastLoginAt: login})
				if !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("login of unlinked %v: %v, want ErrNotFound", key, err)
				}
			}
			if ids, err := s.ListIdentities(ctx, "u1"); err != nil || len(ids) != 1 {
				t.Errorf("identities of u1: %+v, %v", ids, err)
			}
		})
	}
}

// TestGetLinkedUser: the user of a linked identity in one read; not found
// for an unlinked identity or one whose user is gone.
func TestGetLinkedUser(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := b.Open(t)
			want := &storage.User{ID: "u1", Email: "ann@example.com", EmailVerified: true, Name: "Ann", Active: true}
			if err := s.CreateUser(ctx, want); err != nil {
				t.Fatal(err)
			}
			for _, id := range []*storage.Identity{
				{ConnectorID: "okta", Subject: "s1", UserID: "u1"},
				{ConnectorID: "okta", Subject: "orphan", UserID: "gone"},
			} {
				if err := s.CreateIdentity(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.GetLinkedUser(ctx, "okta", "s1")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != "u1" || got.Email != want.Email || !got.EmailVerified || got.Name != "Ann" || !got.Active ||
				!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
				t.Errorf("linked user %+v, want %+v", got, want)
			}
			for _, key := range [][2]string{{"okta", "orphan"}, {"okta", "s2"}, {"google", "s1"}} {
				if _, err := s.GetLinkedUser(ctx, key[0], key[1]); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("linked user of %v: %v, want ErrNotFound", key, err)
				}
			}
		})
	}
}
