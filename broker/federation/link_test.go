package federation

import (
	"context"
	"log/slog"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// testDataKey encrypts connector data in the package's tests.
var testDataKey = []byte("0123456789abcdef0123456789abcdef")

// newLinker is a Federation for the linking functions, with connectors
// "okta" and "google" trusted for e-mail and "untrusted" not.
func newLinker(t *testing.T, b storagetest.Backend, linkByEmail bool) (*Federation, *storage.Store) {
	store, _ := b.Open(t)
	return &Federation{cfg: Config{Store: store, LinkByEmail: linkByEmail, DataKey: testDataKey}, log: slog.New(slog.DiscardHandler),
		connectors: map[string]*connector{
			"okta":      {id: "okta", name: "Okta", trustEmail: true},
			"google":    {id: "google", name: "Google", trustEmail: true},
			"untrusted": {id: "untrusted", name: "Untrusted"},
		}}, store
}

// TestUserForProfile: a user without a local password follows the
// upstream's profile; a user with one keeps their own.
func TestUserForProfile(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f, store := newLinker(t, b, true)
			ident := connectors.Identity{Subject: "s1", Email: "Ann@Example.com", EmailVerified: true, Name: "Ann", Picture: "https://p/1",
				ConnectorData: []byte("rt-1")}
			u, _, err := f.userFor(ctx, f.connectors["okta"], ident)
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != "ann@example.com" || !u.EmailVerified || u.Name != "Ann" {
				t.Errorf("new user %+v", u)
			}
			ident.Name, ident.Picture, ident.ConnectorData = "Ann Smith", "https://p/2", []byte("rt-2")
			again, _, err := f.userFor(ctx, f.connectors["okta"], ident)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := store.GetUser(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if again.ID != u.ID || stored.Name != "Ann Smith" || stored.Picture != "https://p/2" {
				t.Errorf("after a second login: %+v", stored)
			}
			link, err := store.GetIdentity(ctx, "okta", "s1")
			if err != nil {
				t.Fatal(err)
			}
			if data, err := f.openData("okta", "s1", link.ConnectorData); err != nil || string(data) != "rt-2" {
				t.Errorf("identity %+v: connector data %q, %v", link, data, err)
			}

			// Linked by e-mail to a user with a password: the profile stays.
			local := &storage.User{ID: "u_local", Email: "bo@example.com", EmailVerified: true, PasswordHash: "$argon2id$x", Name: "Bo Local", Active: true}
			if err := store.CreateUser(ctx, local); err != nil {
				t.Fatal(err)
			}
			g1 := connectors.Identity{Subject: "g1", Email: "bo@example.com", EmailVerified: true, Name: "Bo Upstream"}
			if got, confirm, err := f.userFor(ctx, f.connectors["google"], g1); err != nil || got != nil || confirm == nil || confirm.ID != local.ID {
				t.Fatalf("a user with a password was joined without proof: %+v, confirm %+v, %v", got, confirm, err)
			}
			if err := f.linkConfirmed(ctx, f.connectors["google"], local, g1); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				got, _, err := f.userFor(ctx, f.connectors["google"], g1)
				if err != nil || got.ID != local.ID {
					t.Fatalf("linked user %+v, %v", got, err)
				}
			}
			if stored, _ := store.GetUser(ctx, local.ID); stored.Name != "Bo Local" {
				t.Errorf("the upstream overwrote a local user's name: %q", stored.Name)
			}
		})
	}
}

// TestNewUserLosesRace: when a concurrent first login linked the identity
// first, newUser drops the user it made and returns the winner's.
func TestNewUserLosesRace(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			f, store := newLinker(t, b, false)
			ident := connectors.Identity{Subject: "s1", Email: "ann@example.com", EmailVerified: true}
			winner, _, err := f.userFor(ctx, f.connectors["okta"], ident)
			if err != nil {
				t.Fatal(err)
			}
			link := &storage.Identity{ConnectorID: "okta", Subject: "s1", Email: ident.Email, EmailVerified: true}
			got, err := f.newUser(ctx, f.connectors["okta"], link, ident) // as if it had not seen the winner's link
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != winner.ID {
				t.Errorf("newUser returned %s, want the winner %s", got.ID, winner.ID)
			}
			users, err := store.ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != 1 {
				t.Errorf("%d users left, want 1: %+v", len(users), users)
			}
		})
	}
}

// TestUserForStaleLink: a link to a deleted user gets a new user.
func TestUserForStaleLink(t *testing.T) {
	ctx := context.Background()
	f, store := newLinker(t, storagetest.Backends(t)[0], false)
	if err := store.UpsertIdentity(ctx, &storage.Identity{ConnectorID: "okta", Subject: "s1", UserID: "u_gone"}); err != nil {
		t.Fatal(err)
	}
	u, _, err := f.userFor(ctx, f.connectors["okta"], connectors.Identity{Subject: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	link, err := store.GetIdentity(ctx, "okta", "s1")
	if err != nil || u.ID == "u_gone" || link.UserID != u.ID {
		t.Errorf("user %s, link %+v, %v", u.ID, link, err)
	}
}
