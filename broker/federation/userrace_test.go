package federation_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/federation"
	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// racingStore runs before, once, just before federation writes a user's
// profile: a write that commits after the login read the user.
type racingStore struct {
	*storage.Store
	once   sync.Once
	before func()
}

func (s *racingStore) SetUserProfile(ctx context.Context, id string, p storage.UserProfile) error {
	s.once.Do(s.before)
	return s.Store.SetUserProfile(ctx, id, p)
}

// TestProfileSyncRacingOperator: a federated login updates the user's
// profile from the upstream after reading the user; an operator's
// `bridgekeeper user disable` or `user set-password` (the real command)
// that commits in between sticks. The profile write wrote back the whole
// row it had read: the disable was undone, the password lost.
func TestProfileSyncRacingOperator(t *testing.T) {
	bin := testenv.Binary(t, "./cmd/bridgekeeper")
	for _, b := range storagetest.Backends(t) {
		for _, op := range []struct {
			args  []string
			stdin string
			check func(u *storage.User) bool
		}{
			{[]string{"user", "disable"}, "", func(u *storage.User) bool { return u.Disabled }},
			{[]string{"user", "set-password"}, "a long and fresh password\n", func(u *storage.User) bool { return u.PasswordHash != "" }},
		} {
			t.Run(b.Name+"/"+strings.Join(op.args, "-"), func(t *testing.T) {
				ctx := context.Background()
				race := &racingStore{before: func() {}}
				e := newEnv(t, envOptions{backend: b, fedStore: func(s *storage.Store) federation.Store {
					race.Store = s
					return race
				}})
				e.login(e.browser(), "okta", "1001")
				u, err := e.store.GetUserByEmail(ctx, "alice@example.com")
				if err != nil {
					t.Fatal(err)
				}
				// The upstream's name differs from the stored one: the next
				// login writes the profile.
				if err := e.store.SetUserProfile(ctx, u.ID, storage.UserProfile{Name: "Stale"}); err != nil {
					t.Fatal(err)
				}
				race.once = sync.Once{}
				race.before = func() {
					cmd := exec.Command(bin, append(op.args, "--dsn", e.dsn, u.ID)...)
					cmd.Stdin = strings.NewReader(op.stdin)
					cmd.Env = append(cmd.Environ(), "BRIDGEKEEPER_SYSTEM_SECRET=")
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Errorf("bridgekeeper %s: %v\n%s", strings.Join(op.args, " "), err, out)
					}
				}
				br := e.browser()
				ar := spaAuth()
				br.get(e.upstreamLogin(e.startUpstream(br, ar, "okta"), "1001").String())

				got, err := e.store.GetUser(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !op.check(got) {
					t.Errorf("after %s racing the login's profile update: %+v", strings.Join(op.args, " "), got)
				}
				if got.Name != "Alice Anderson" {
					t.Errorf("profile not updated: name %q", got.Name)
				}
			})
		}
	}
}
