package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

func newClient(id string) *storage.Client {
	return &storage.Client{
		ID:                      id,
		Name:                    "Client " + id,
		SecretHash:              []byte{1, 2, 3, 0, 255},
		TokenEndpointAuthMethod: "client_secret_basic",
		RedirectURIs:            []string{"https://app.example/cb", "http://127.0.0.1/cb"},
		PostLogoutRedirectURIs:  []string{"https://app.example/bye"},
		AllowedOrigins:          []string{"https://app.example"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"openid", "profile", "email", "offline_access"},
		Audiences:               []string{"https://api.example"},
		DefaultAudiences:        []string{"https://api.example"},
	}
}

func testClients(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	b := newClient("b")
	must(t, s.CreateClient(c, b))
	if b.CreatedAt.IsZero() || !b.UpdatedAt.Equal(b.CreatedAt) {
		t.Errorf("CreateClient set CreatedAt=%v UpdatedAt=%v", b.CreatedAt, b.UpdatedAt)
	}
	wantErr(t, s.CreateClient(c, newClient("b")), storage.ErrConflict)
	// nil lists: stored as the registration defaults, or as []
	pub := &storage.Client{ID: "a", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}}
	must(t, s.CreateClient(c, pub))

	got, err := s.LookupClient(c, "b")
	must(t, err)
	if got.Name != b.Name || got.Public || got.TokenEndpointAuthMethod != "client_secret_basic" ||
		string(got.SecretHash) != string(b.SecretHash) {
		t.Errorf("LookupClient = %+v, want %+v", got, b)
	}
	sameStrings(t, "RedirectURIs", got.RedirectURIs, b.RedirectURIs)
	sameStrings(t, "PostLogoutRedirectURIs", got.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs)
	sameStrings(t, "AllowedOrigins", got.AllowedOrigins, b.AllowedOrigins)
	sameStrings(t, "GrantTypes", got.GrantTypes, b.GrantTypes)
	sameStrings(t, "ResponseTypes", got.ResponseTypes, b.ResponseTypes)
	sameStrings(t, "Scopes", got.Scopes, b.Scopes)
	sameStrings(t, "Audiences", got.Audiences, b.Audiences)
	sameStrings(t, "DefaultAudiences", got.DefaultAudiences, b.DefaultAudiences)
	sameTime(t, "CreatedAt", got.CreatedAt, b.CreatedAt)

	fc, err := s.GetClient(c, "a")
	must(t, err)
	if fc.GetID() != "a" || !fc.IsPublic() || len(fc.GetRedirectURIs()) != 1 {
		t.Errorf("GetClient(a) = %+v", fc)
	}
	pubGot, ok := fc.(*storage.Client)
	if !ok {
		t.Fatalf("GetClient returned %T, want *storage.Client", fc)
	}
	sameStrings(t, "default grant types", fc.GetGrantTypes(), []string{"authorization_code", "refresh_token"})
	sameStrings(t, "default scopes", fc.GetScopes(), []string{"openid", "profile", "email", "offline_access"})
	sameStrings(t, "response types", fc.GetResponseTypes(), []string{"code"})
	if pubGot.Name != "a" || pubGot.TokenEndpointAuthMethod != "none" {
		t.Errorf("public client name %q, auth method %q; want a, none", pubGot.Name, pubGot.TokenEndpointAuthMethod)
	}
	for name, list := range map[string][]string{"PostLogoutRedirectURIs": pubGot.PostLogoutRedirectURIs,
		"AllowedOrigins": pubGot.AllowedOrigins, "Audiences": pubGot.Audiences, "DefaultAudiences": pubGot.DefaultAudiences} {
		if list == nil || len(list) != 0 {
			t.Errorf("%s = %#v, want []", name, list)
		}
	}

	_, err = s.LookupClient(c, "missing")
	wantErr(t, err, storage.ErrNotFound)

	list, err := s.ListClients(c)
	must(t, err)
	if len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("ListClients = %+v, want a, b", list)
	}

	got.Name = "Renamed"
	got.RedirectURIs = []string{"https://other.example/cb"}
	must(t, s.UpdateClient(c, got))
	again, err := s.LookupClient(c, "b")
	must(t, err)
	if again.Name != "Renamed" || again.UpdatedAt.Before(again.CreatedAt) {
		t.Errorf("after UpdateClient: %+v", again)
	}
	sameStrings(t, "updated RedirectURIs", again.RedirectURIs, []string{"https://other.example/cb"})
	sameTime(t, "CreatedAt after update", again.CreatedAt, b.CreatedAt)
	wantErr(t, s.UpdateClient(c, newClient("missing")), storage.ErrNotFound)
	wantErr(t, s.DeleteClient(c, "missing"), storage.ErrNotFound)
}

// testInvalidClientRefused: a client that breaks a registration rule
// (storage.ValidateClient) is refused by CreateClient and UpdateClient,
// whoever calls them, and nothing is stored.
func testInvalidClientRefused(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	broken := map[string]func(*storage.Client){
		"no id":                          func(cl *storage.Client) { cl.ID = "" },
		"unknown grant":                  func(cl *storage.Client) { cl.GrantTypes = []string{"password"} },
		"code grant, no redirect URI":    func(cl *storage.Client) { cl.RedirectURIs = nil },
		"redirect URI with userinfo":     func(cl *storage.Client) { cl.RedirectURIs = []string{"https://evil@app.example/cb"} },
		"plain http redirect URI":        func(cl *storage.Client) { cl.RedirectURIs = []string{"http://app.example/cb"} },
		"relative redirect URI":          func(cl *storage.Client) { cl.RedirectURIs = []string{"/cb"} },
		"redirect URI with fragment":     func(cl *storage.Client) { cl.RedirectURIs = []string{"https://app.example/cb#x"} },
		"post-logout URI with userinfo":  func(cl *storage.Client) { cl.PostLogoutRedirectURIs = []string{"https://u@app.example/"} },
		"origin with a path":             func(cl *storage.Client) { cl.AllowedOrigins = []string{"https://app.example/app"} },
		"confidential without secret":    func(cl *storage.Client) { cl.SecretHash = nil },
		"confidential, auth method none": func(cl *storage.Client) { cl.TokenEndpointAuthMethod = "none" },
		"public with a secret":           func(cl *storage.Client) { cl.Public, cl.TokenEndpointAuthMethod = true, "none" },
		"public, client_credentials": func(cl *storage.Client) {
			cl.Public, cl.SecretHash, cl.GrantTypes = true, nil, []string{"client_credentials"}
		},
		"public, auth client_secret_post": func(cl *storage.Client) {
			cl.Public, cl.SecretHash, cl.TokenEndpointAuthMethod = true, nil, "client_secret_post"
		},
		"scope with a space":    func(cl *storage.Client) { cl.Scopes = []string{"openid profile"} },
		"audience with a space": func(cl *storage.Client) { cl.Audiences = []string{"my api"} },
	}
	for name, breakIt := range broken {
		cl := newClient("bad")
		breakIt(cl)
		if err := s.CreateClient(c, cl); !errors.Is(err, storage.ErrInvalidClient) {
			t.Errorf("%s: CreateClient = %v, want ErrInvalidClient", name, err)
		}
		if _, err := s.LookupClient(c, "bad"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: the client was stored (LookupClient: %v)", name, err)
			_ = s.DeleteClient(c, "bad")
		}
	}

	must(t, s.CreateClient(c, newClient("good")))
	for name, breakIt := range broken {
		if name == "no id" {
			continue
		}
		cl, err := s.LookupClient(c, "good")
		must(t, err)
		breakIt(cl)
		if err := s.UpdateClient(c, cl); !errors.Is(err, storage.ErrInvalidClient) {
			t.Errorf("%s: UpdateClient = %v, want ErrInvalidClient", name, err)
		}
	}
	got, err := s.LookupClient(c, "good")
	must(t, err)
	want := newClient("good")
	sameStrings(t, "RedirectURIs after refused updates", got.RedirectURIs, want.RedirectURIs)
	sameStrings(t, "GrantTypes after refused updates", got.GrantTypes, want.GrantTypes)
	sameStrings(t, "Scopes after refused updates", got.Scopes, want.Scopes)
	if got.Public || string(got.SecretHash) != string(want.SecretHash) || got.TokenEndpointAuthMethod != want.TokenEndpointAuthMethod {
		t.Errorf("after refused updates: public %v, secret %x, auth %q", got.Public, got.SecretHash, got.TokenEndpointAuthMethod)
	}
}

func testDeleteClient(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("gone")))
	must(t, s.CreateClient(c, newClient("kept")))
	gone := issueFamily(t, ts, "gone", "req-gone", "user-1")
	kept := issueFamily(t, ts, "kept", "req-kept", "user-1")
	must(t, s.CreatePendingLogin(c, &storage.PendingLogin{ID: "pl", ClientID: "gone", ExpiresAt: time.Now().Add(time.Hour)}))

	must(t, s.DeleteClient(c, "gone"))
	_, err := s.LookupClient(c, "gone")
	wantErr(t, err, storage.ErrNotFound)
	gone.assertGone(t, ts)
	kept.assertActive(t, ts)
	_, err = s.GetPendingLogin(c, "pl")
	wantErr(t, err, storage.ErrNotFound)
}

func testUsers(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	bob := &storage.User{ID: "u-bob", Email: "Bob@Example.COM", PasswordHash: "$argon2id$x", Name: "Bob", Active: true}
	must(t, s.CreateUser(c, bob))
	if bob.Email != "bob@example.com" {
		t.Errorf("CreateUser kept e-mail %q, want it lower-cased", bob.Email)
	}
	wantErr(t, s.CreateUser(c, &storage.User{ID: "u-bob2", Email: "BOB@example.com"}), storage.ErrConflict)
	wantErr(t, s.CreateUser(c, &storage.User{ID: "u-bob", Email: "other@example.com"}), storage.ErrConflict)
	// Users without an e-mail address do not collide.
	must(t, s.CreateUser(c, &storage.User{ID: "u-anon1"}))
	must(t, s.CreateUser(c, &storage.User{ID: "u-anon2"}))
	alice := &storage.User{ID: "u-alice", Email: "alice@example.com", EmailVerified: true, GivenName: "Alice", FamilyName: "A", Picture: "https://p", Disabled: true}
	must(t, s.CreateUser(c, alice))

	got, err := s.GetUserByEmail(c, "BOB@example.com")
	must(t, err)
	if got.ID != "u-bob" || got.PasswordHash != bob.PasswordHash || !got.Active || got.Name != "Bob" {
		t.Errorf("GetUserByEmail = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, bob.CreatedAt)
	_, err = s.GetUserByEmail(c, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetUserByEmail(c, "")
	wantErr(t, err, storage.ErrNotFound)

	got, err = s.GetUser(c, "u-alice")
	must(t, err)
	if got.Email != "alice@example.com" || !got.EmailVerified || got.GivenName != "Alice" || got.FamilyName != "A" ||
		got.Picture != "https://p" || !got.Disabled || got.Active {
		t.Errorf("GetUser = %+v, want %+v", got, alice)
	}
	_, err = s.GetUser(c, "missing")
	wantErr(t, err, storage.ErrNotFound)

	list, err := s.ListUsers(c)
	must(t, err)
	var emails []string
	for _, u := range list {
		emails = append(emails, u.Email)
	}
	sameStrings(t, "ListUsers e-mails", emails, []string{"", "", "alice@example.com", "bob@example.com"})

	_, err = s.ChangeUserSecurity(c, "u-alice", func(u *storage.User) error { u.Email = "BOB@example.com"; return nil })
	wantErr(t, err, storage.ErrConflict)
	_, err = s.ChangeUserSecurity(c, "u-alice", func(u *storage.User) error {
		u.Email, u.Active = "Alice.New@example.com", true
		return nil
	})
	must(t, err)
	again, err := s.GetUserByEmail(c, "alice.new@example.com")
	must(t, err)
	if again.ID != "u-alice" || !again.Active || !again.Disabled || again.GivenName != "Alice" {
		t.Errorf("after ChangeUserSecurity: %+v", again)
	}
	must(t, s.SetUserDisabled(c, "u-alice", false))
	must(t, s.SetUserProfile(c, "u-alice", storage.UserProfile{Name: "Alice B", GivenName: "Alice", FamilyName: "B", Picture: "https://q"}))
	again, err = s.GetUser(c, "u-alice")
	must(t, err)
	if again.Disabled || again.Name != "Alice B" || again.FamilyName != "B" || again.Picture != "https://q" ||
		again.Email != "alice.new@example.com" || !again.Active || !again.UpdatedAt.After(again.CreatedAt) {
		t.Errorf("after SetUserDisabled and SetUserProfile: %+v", again)
	}
	wantErr(t, s.SetUserDisabled(c, "missing", true), storage.ErrNotFound)
	wantErr(t, s.SetUserProfile(c, "missing", storage.UserProfile{}), storage.ErrNotFound)
	_, err = s.ChangeUserSecurity(c, "missing", func(*storage.User) error { return nil })
	wantErr(t, err, storage.ErrNotFound)
}

// testUserWritesConcurrently: every write of a user changes only its own
// columns, so writers racing on one user all stick — an operator's
// disable, a password change, an e-mail change through a link and an
// upstream's profile update, each several times at once.
func testUserWritesConcurrently(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateUser(c, &storage.User{ID: "u", Email: "u@example.com", PasswordHash: "old", Active: true}))
	now := time.Now()
	const rounds = 8
	for i := range rounds {
		must(t, s.CreateActionToken(c, &storage.ActionToken{ID: fmt.Sprintf("change-%d", i), Kind: "email_change", UserID: "u",
			Data: "new@example.com", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for i := range rounds {
		wg.Go(func() { errs <- s.SetUserDisabled(c, "u", true) })
		wg.Go(func() {
			_, err := s.ChangeUserSecurity(c, "u", func(u *storage.User) error { u.PasswordHash = "new"; return nil })
			errs <- err
		})
		wg.Go(func() {
			_, _, err := s.RedeemActionToken(c, fmt.Sprintf("change-%d", i), "email_change", now,
				func(t *storage.ActionToken, u *storage.User) (bool, error) {
					u.Email, u.EmailVerified = t.Data, true
					return true, nil
				})
			if errors.Is(err, storage.ErrNotFound) {
				err = nil // ended by a concurrent security change: as it should
			}
			errs <- err
		})
		wg.Go(func() { errs <- s.SetUserProfile(c, "u", storage.UserProfile{Name: "Upstream Name"}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	u, err := s.GetUser(c, "u")
	must(t, err)
	if !u.Disabled || u.PasswordHash != "new" || u.Name != "Upstream Name" || !u.Active {
		t.Errorf("after concurrent writers: %+v, want disabled, password %q, name %q", u, "new", "Upstream Name")
	}
}

func testDeleteUser(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateClient(c, newClient("app")))
	for _, id := range []string{"u-gone", "u-kept"} {
		must(t, s.CreateUser(c, &storage.User{ID: id, Email: id + "@example.com"}))
		must(t, s.UpsertIdentity(c, &storage.Identity{ConnectorID: "okta", Subject: "sub-" + id, UserID: id}))
		must(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "bs-" + id, UserID: id, ExpiresAt: time.Now().Add(time.Hour)}))
		must(t, s.CreateActionToken(c, &storage.ActionToken{ID: "at-" + id, Kind: "reset", UserID: id, ExpiresAt: time.Now().Add(time.Hour)}))
	}
	gone := issueFamily(t, ts, "app", "req-gone", "u-gone")
	kept := issueFamily(t, ts, "app", "req-kept", "u-kept")

	must(t, s.DeleteUser(c, "u-gone"))
	_, err := s.GetUser(c, "u-gone")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetIdentity(c, "okta", "sub-u-gone")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetBrowserSession(c, "bs-u-gone")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.UseActionToken(c, "at-u-gone", "reset", time.Now())
	wantErr(t, err, storage.ErrNotFound)
	gone.assertGone(t, ts)

	_, err = s.GetIdentity(c, "okta", "sub-u-kept")
	must(t, err)
	_, err = s.GetBrowserSession(c, "bs-u-kept")
	must(t, err)
	kept.assertActive(t, ts)
	wantErr(t, s.DeleteUser(c, "u-gone"), storage.ErrNotFound)
}

func testIdentities(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	first := time.Now().Add(-time.Hour)
	id := &storage.Identity{
		ConnectorID: "google", Subject: "1234", UserID: "u1", Email: "a@example.com", EmailVerified: true,
		Claims: []byte(`{"email":"a@example.com"}`), ConnectorData: []byte{0, 1, 2},
		CreatedAt: first, LastLoginAt: first,
	}
	must(t, s.UpsertIdentity(c, id))
	got, err := s.GetIdentity(c, "google", "1234")
	must(t, err)
	if got.UserID != "u1" || got.Email != "a@example.com" || !got.EmailVerified ||
		string(got.Claims) != string(id.Claims) || string(got.ConnectorData) != string(id.ConnectorData) {
		t.Errorf("GetIdentity = %+v", got)
	}
	sameTime(t, "CreatedAt", got.CreatedAt, first)

	later := time.Now()
	must(t, s.UpsertIdentity(c, &storage.Identity{
		ConnectorID: "google", Subject: "1234", UserID: "u1", Email: "b@example.com",
		ConnectorData: []byte{9}, CreatedAt: later, LastLoginAt: later,
	}))
	got, err = s.GetIdentity(c, "google", "1234")
	must(t, err)
	if got.Email != "b@example.com" || got.EmailVerified || string(got.ConnectorData) != "\x09" {
		t.Errorf("after upsert: %+v", got)
	}
	sameTime(t, "CreatedAt kept", got.CreatedAt, first)
	sameTime(t, "LastLoginAt", got.LastLoginAt, later)

	must(t, s.UpsertIdentity(c, &storage.Identity{ConnectorID: "facebook", Subject: "9", UserID: "u1"}))
	must(t, s.UpsertIdentity(c, &storage.Identity{ConnectorID: "okta", Subject: "1234", UserID: "u2"}))
	list, err := s.ListIdentities(c, "u1")
	must(t, err)
	if len(list) != 2 || list[0].ConnectorID != "facebook" || list[1].ConnectorID != "google" {
		t.Errorf("ListIdentities(u1) = %+v", list)
	}
	_, err = s.GetIdentity(c, "okta", "nope")
	wantErr(t, err, storage.ErrNotFound)

	must(t, s.CreateIdentity(c, &storage.Identity{ConnectorID: "github", Subject: "7", UserID: "u3"}))
	wantErr(t, s.CreateIdentity(c, &storage.Identity{ConnectorID: "github", Subject: "7", UserID: "u4"}), storage.ErrConflict)
	got, err = s.GetIdentity(c, "github", "7")
	must(t, err)
	if got.UserID != "u3" || got.CreatedAt.IsZero() {
		t.Errorf("CreateIdentity stored %+v", got)
	}
	must(t, s.DeleteIdentity(c, "github", "7"))
	must(t, s.DeleteIdentity(c, "github", "7"))
	_, err = s.GetIdentity(c, "github", "7")
	wantErr(t, err, storage.ErrNotFound)
}

func testBrowserSessions(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	auth := time.Now().Add(-time.Minute)
	bs := &storage.BrowserSession{ID: "s1", UserID: "u1", AuthTime: auth, IDP: "local", AMR: []string{"pwd"}, ExpiresAt: time.Now().Add(time.Hour)}
	must(t, s.CreateBrowserSession(c, bs))
	wantErr(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "s1", UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}), storage.ErrConflict)
	must(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "s2", UserID: "u1", IDP: "okta", ExpiresAt: time.Now().Add(time.Hour)}))
	must(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "s3", UserID: "u2", ExpiresAt: time.Now().Add(time.Hour)}))
	must(t, s.CreateBrowserSession(c, &storage.BrowserSession{ID: "old", UserID: "u2", ExpiresAt: time.Now().Add(-time.Second)}))

	got, err := s.GetBrowserSession(c, "s1")
	must(t, err)
	if got.UserID != "u1" || got.IDP != "local" {
		t.Errorf("GetBrowserSession = %+v", got)
	}
	sameStrings(t, "AMR", got.AMR, []string{"pwd"})
	sameTime(t, "AuthTime", got.AuthTime, auth)
	_, err = s.GetBrowserSession(c, "old")
	wantErr(t, err, storage.ErrNotFound)

	must(t, s.DeleteBrowserSession(c, "s1"))
	must(t, s.DeleteBrowserSession(c, "s1")) // absent: no error
	_, err = s.GetBrowserSession(c, "s1")
	wantErr(t, err, storage.ErrNotFound)

	must(t, s.DeleteUserBrowserSessions(c, "u1"))
	_, err = s.GetBrowserSession(c, "s2")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetBrowserSession(c, "s3")
	must(t, err)
}

func testPendingLogins(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	req := time.Now()
	p := &storage.PendingLogin{
		ID: "p1", BrowserBinding: "bind", ClientID: "app", Form: "client_id=app&scope=openid",
		RequestedAt: req, ExpiresAt: time.Now().Add(10 * time.Minute),
	}
	must(t, s.CreatePendingLogin(c, p))
	must(t, s.CreatePendingLogin(c, &storage.PendingLogin{ID: "expired", ExpiresAt: time.Now().Add(-time.Second)}))

	got, err := s.GetPendingLogin(c, "p1")
	must(t, err)
	if got.BrowserBinding != "bind" || got.ClientID != "app" || got.Form != p.Form || got.ConnectorID != "" {
		t.Errorf("GetPendingLogin = %+v", got)
	}
	sameTime(t, "RequestedAt", got.RequestedAt, req)

	got.ConnectorID = "okta"
	got.UpstreamStateHash = "statehash"
	got.ConnectorState = []byte("opaque\x00state")
	must(t, s.UpdatePendingLogin(c, got))
	wantErr(t, s.UpdatePendingLogin(c, &storage.PendingLogin{ID: "missing"}), storage.ErrNotFound)

	taken, err := s.TakePendingLogin(c, "p1")
	must(t, err)
	if taken.ConnectorID != "okta" || taken.UpstreamStateHash != "statehash" || string(taken.ConnectorState) != "opaque\x00state" {
		t.Errorf("TakePendingLogin = %+v", taken)
	}
	_, err = s.TakePendingLogin(c, "p1")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetPendingLogin(c, "p1")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetPendingLogin(c, "expired")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.TakePendingLogin(c, "expired")
	wantErr(t, err, storage.ErrNotFound)
}

// race runs fn n times at once and returns the errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// exactlyOne checks that one call succeeded and the others failed with a
// loser error.
func exactlyOne(t *testing.T, errs []error, loser func(error) bool) {
	t.Helper()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !loser(err):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent calls succeeded, want exactly 1", ok, len(errs))
	}
}

const concurrency = 16

func testTakePendingLoginConcurrently(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreatePendingLogin(c, &storage.PendingLogin{ID: "p", ExpiresAt: time.Now().Add(time.Hour)}))
	errs := race(concurrency, func(int) error {
		_, err := s.TakePendingLogin(c, "p")
		return err
	})
	exactlyOne(t, errs, func(err error) bool { return isNotFound(err) })
}

func testUsePendingLoginConcurrently(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreatePendingLogin(c, &storage.PendingLogin{ID: "p", BrowserBinding: "b", ExpiresAt: time.Now().Add(time.Hour)}))
	errs := race(concurrency, func(int) error {
		return s.UsePendingLogin(c, "p", "b")
	})
	exactlyOne(t, errs, func(err error) bool { return isNotFound(err) })
}

func testSigningKeys(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	base := time.Now().Add(-time.Hour)
	for i, kid := range []string{"k2", "k1", "k3"} {
		must(t, s.CreateSigningKey(c, &storage.SigningKey{
			KID: kid, Algorithm: "RS256", PublicJWK: []byte(`{"kid":"` + kid + `"}`), PrivateEnc: []byte{byte(i), 0, 1},
			CreatedAt: base.Add(time.Duration(i) * time.Minute), ActivateAt: base.Add(time.Duration(i+1) * time.Minute),
		}))
	}
	wantErr(t, s.CreateSigningKey(c, &storage.SigningKey{KID: "k1", PublicJWK: []byte("{}"), PrivateEnc: []byte{1}}), storage.ErrConflict)
	keys, err := s.ListSigningKeys(c)
	must(t, err)
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	sameStrings(t, "ListSigningKeys order", kids, []string{"k2", "k1", "k3"})
	if string(keys[1].PrivateEnc) != "\x01\x00\x01" || string(keys[1].PublicJWK) != `{"kid":"k1"}` ||
		keys[1].RetiredAt != nil || keys[1].RemoveAt != nil {
		t.Errorf("key k1 = %+v", keys[1])
	}
	sameTime(t, "ActivateAt", keys[1].ActivateAt, base.Add(2*time.Minute))

	retired, removeAt := time.Now(), time.Now().Add(24*time.Hour)
	won, err := s.RetireSigningKey(c, "k2", retired, removeAt)
	must(t, err)
	if !won {
		t.Fatal("RetireSigningKey(k2) = false, want true")
	}
	won, err = s.RetireSigningKey(c, "k2", time.Now(), time.Now())
	must(t, err)
	if won {
		t.Fatal("second RetireSigningKey(k2) = true, want false")
	}
	_, err = s.RetireSigningKey(c, "missing", time.Now(), time.Now())
	wantErr(t, err, storage.ErrNotFound)

	keys, err = s.ListSigningKeys(c)
	must(t, err)
	if keys[0].RetiredAt == nil || keys[0].RemoveAt == nil {
		t.Fatalf("k2 not retired: %+v", keys[0])
	}
	sameTime(t, "RetiredAt", *keys[0].RetiredAt, retired)
	sameTime(t, "RemoveAt", *keys[0].RemoveAt, removeAt)

	k3 := keys[2]
	k3.Algorithm = "ES256"
	must(t, s.UpdateSigningKey(c, &k3))
	wantErr(t, s.UpdateSigningKey(c, &storage.SigningKey{KID: "missing", PublicJWK: []byte("{}"), PrivateEnc: []byte{1}}), storage.ErrNotFound)

	must(t, s.DeleteSigningKey(c, "k2"))
	must(t, s.DeleteSigningKey(c, "k2"))
	keys, err = s.ListSigningKeys(c)
	must(t, err)
	if len(keys) != 2 || keys[1].KID != "k3" || keys[1].Algorithm != "ES256" {
		t.Errorf("after update and delete: %+v", keys)
	}
}

func testActionTokens(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	exp := time.Now().Add(time.Hour)
	must(t, s.CreateActionToken(c, &storage.ActionToken{ID: "t1", Kind: "email_change", UserID: "u1", Data: "new@example.com", ExpiresAt: exp}))
	must(t, s.CreateActionToken(c, &storage.ActionToken{ID: "t2", Kind: "reset", UserID: "u1", ExpiresAt: time.Now().Add(-time.Second)}))
	wantErr(t, s.CreateActionToken(c, &storage.ActionToken{ID: "t1", Kind: "reset", UserID: "u1", ExpiresAt: exp}), storage.ErrConflict)

	_, err := s.UseActionToken(c, "t1", "reset", time.Now())
	wantErr(t, err, storage.ErrNotFound) // wrong kind
	usedAt := time.Now()
	tok, err := s.UseActionToken(c, "t1", "email_change", usedAt)
	must(t, err)
	if tok.UserID != "u1" || tok.Data != "new@example.com" || tok.UsedAt == nil {
		t.Fatalf("UseActionToken = %+v", tok)
	}
	sameTime(t, "UsedAt", *tok.UsedAt, usedAt)
	sameTime(t, "ExpiresAt", tok.ExpiresAt, exp)
	_, err = s.UseActionToken(c, "t1", "email_change", time.Now())
	wantErr(t, err, storage.ErrNotFound) // used
	_, err = s.UseActionToken(c, "t2", "reset", time.Now())
	wantErr(t, err, storage.ErrNotFound) // expired
	_, err = s.UseActionToken(c, "missing", "reset", time.Now())
	wantErr(t, err, storage.ErrNotFound)
}

func testUseActionTokenConcurrently(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, s.CreateActionToken(c, &storage.ActionToken{ID: "t", Kind: "activate", UserID: "u", ExpiresAt: time.Now().Add(time.Hour)}))
	errs := race(concurrency, func(int) error {
		_, err := s.UseActionToken(c, "t", "activate", time.Now())
		return err
	})
	exactlyOne(t, errs, isNotFound)
}

func testRateCounters(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	t0 := time.Now()
	for i := 1; i <= 3; i++ {
		n, start, err := s.HitRateCounter(c, "login:bob", time.Minute, t0.Add(time.Duration(i)*time.Second))
		must(t, err)
		if n != i {
			t.Fatalf("hit %d: count = %d", i, n)
		}
		sameTime(t, "window start", start, t0.Add(time.Second))
	}
	n, _, err := s.HitRateCounter(c, "login:alice", time.Minute, t0)
	must(t, err)
	if n != 1 {
		t.Errorf("other key: count = %d, want 1", n)
	}
	// The window ends: a new one starts.
	later := t0.Add(2 * time.Minute)
	n, start, err := s.HitRateCounter(c, "login:bob", time.Minute, later)
	must(t, err)
	if n != 1 {
		t.Errorf("new window: count = %d, want 1", n)
	}
	sameTime(t, "new window start", start, later)

	must(t, s.ResetRateCounter(c, "login:bob"))
	n, _, err = s.HitRateCounter(c, "login:bob", time.Minute, later.Add(time.Second))
	must(t, err)
	if n != 1 {
		t.Errorf("after reset: count = %d, want 1", n)
	}

	errs := race(concurrency, func(int) error {
		_, _, err := s.HitRateCounter(c, "burst", time.Hour, time.Now())
		return err
	})
	for _, err := range errs {
		must(t, err)
	}
	n, _, err = s.HitRateCounter(c, "burst", time.Hour, time.Now())
	must(t, err)
	if n != concurrency+1 {
		t.Errorf("after %d concurrent hits and one more: count = %d", concurrency, n)
	}
}

func isNotFound(err error) bool { return errorsIs(err, storage.ErrNotFound) }

func testClientAssertionJTI(t *testing.T, s *storage.Store, ts *storage.TokenStore) {
	c := ctx(t)
	must(t, ts.ClientAssertionJWTValid(c, "jti-1"))
	must(t, ts.SetClientAssertionJWT(c, "jti-1", time.Now().Add(time.Hour)))
	if err := ts.ClientAssertionJWTValid(c, "jti-1"); !errorsIs(err, fositeErrJTIKnown) {
		t.Fatalf("ClientAssertionJWTValid after Set = %v, want ErrJTIKnown", err)
	}
	if err := ts.SetClientAssertionJWT(c, "jti-1", time.Now().Add(time.Hour)); !errorsIs(err, fositeErrJTIKnown) {
		t.Fatalf("second SetClientAssertionJWT = %v, want ErrJTIKnown", err)
	}
	// An expired jti may be used again.
	must(t, ts.SetClientAssertionJWT(c, "jti-2", time.Now().Add(-time.Second)))
	must(t, ts.ClientAssertionJWTValid(c, "jti-2"))
	must(t, ts.SetClientAssertionJWT(c, "jti-2", time.Now().Add(time.Hour)))
	if err := ts.ClientAssertionJWTValid(c, "jti-2"); !errorsIs(err, fositeErrJTIKnown) {
		t.Fatalf("ClientAssertionJWTValid(jti-2) = %v, want ErrJTIKnown", err)
	}
}
