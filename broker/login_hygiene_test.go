package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/bridgekeeper/bridgekeeper/internal/password"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// succeedingLimiter is a LoginLimiter with the optional success hook.
type succeedingLimiter struct {
	fakeLimiter
	mu        sync.Mutex
	succeeded []string
}

func (l *succeedingLimiter) Succeeded(_ context.Context, action, account, ip string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.succeeded = append(l.succeeded, action+" "+account+" "+ip)
	return nil
}

func TestLoginTellsTheLimiterAboutSuccess(t *testing.T) {
	lim := &succeedingLimiter{}
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, func(c *Config) { c.LoginLimiter = lim })
	br := e.browser()
	p := br.get(e.authURL(spaAuth()))
	if r := br.submitLogin(p, userEmail, "wrong password"); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", r.status)
	}
	if r := br.submitLogin(p, disabledEmail, userPassword); r.status != http.StatusForbidden {
		t.Fatalf("disabled account: %d", r.status)
	}
	if len(lim.succeeded) != 0 {
		t.Fatalf("success hook called for failed logins: %q", lim.succeeded)
	}
	redirectParams(t, br.submitLogin(p, "Alice@Example.com", userPassword), spaRedirect)
	if len(lim.succeeded) != 1 || lim.succeeded[0] != "login alice@example.com 127.0.0.1" {
		t.Errorf("success hook calls %q, want [login alice@example.com 127.0.0.1]", lim.succeeded)
	}
	if len(lim.calls) != 3 {
		t.Errorf("Allow calls %q, want 3", lim.calls)
	}
}

// oldHash is an argon2id hash of pw with weaker parameters than today's.
func oldHash(t *testing.T, pw string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte(pw), salt, 1, 8*1024, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=8192,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func TestLoginRehashesOldPasswordHashes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		e := newTestEnv(t, b, nil)
		ctx := t.Context()
		old := oldHash(t, otherPassword)
		if ok, err := password.Verify(old, otherPassword); !ok || err != nil || !password.NeedsRehash(old) {
			t.Fatalf("test hash: verify %v %v, needs rehash %v", ok, err, password.NeedsRehash(old))
		}
		u := &storage.User{ID: "u-carol", Email: "carol@example.com", PasswordHash: old, Active: true}
		if err := e.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		before, err := e.store.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}

		br := e.browser()
		p := br.get(e.authURL(spaAuth()))
		if r := br.submitLogin(p, u.Email, "not the password"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong password: %d", r.status)
		}
		if got, _ := e.store.GetUser(ctx, u.ID); got.PasswordHash != old {
			t.Fatal("a failed login changed the hash")
		}
		redirectParams(t, br.submitLogin(p, u.Email, otherPassword), spaRedirect)

		after, err := e.store.GetUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.PasswordHash == old || password.NeedsRehash(after.PasswordHash) {
			t.Fatalf("hash not upgraded: %s", after.PasswordHash)
		}
		if ok, err := password.Verify(after.PasswordHash, otherPassword); !ok || err != nil {
			t.Fatalf("upgraded hash does not verify the password: %v %v", ok, err)
		}
		if !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("updated_at changed %v → %v (the profile did not)", before.UpdatedAt, after.UpdatedAt)
		}

		// A current hash is left alone.
		br2 := e.browser()
		redirectParams(t, br2.submitLogin(br2.get(e.authURL(spaAuth())), u.Email, otherPassword), spaRedirect)
		if again, _ := e.store.GetUser(ctx, u.ID); again.PasswordHash != after.PasswordHash {
			t.Error("a current hash was re-hashed")
		}
		// The conditional replace never overwrites a hash changed meanwhile.
		if err := e.store.ReplacePasswordHash(ctx, u.ID, old, "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("replace with a stale old hash: %v, want ErrNotFound", err)
		}
	})
}

func TestPasswordVerificationsAreCapped(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: "sqlite"}, nil)
	slots := e.srv.argon
	if cap(slots) != 2*runtime.GOMAXPROCS(0) {
		t.Fatalf("%d slots, want 2×GOMAXPROCS = %d", cap(slots), 2*runtime.GOMAXPROCS(0))
	}
	// Logins of every outcome give their slot back.
	br := e.browser()
	p := br.get(e.authURL(spaAuth()))
	br.submitLogin(p, "nobody@example.com", userPassword)
	br.submitLogin(p, userEmail, "wrong password")
	br.submitLogin(p, inactiveEmail, userPassword)
	redirectParams(t, br.submitLogin(p, userEmail, userPassword), spaRedirect)
	if n := len(slots); n != 0 {
		t.Fatalf("%d slots still held after the logins", n)
	}

	// All slots busy: a verification waits, and gives up with its context.
	for range cap(slots) {
		slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if ok, err := e.srv.verifyPassword(ctx, e.user, userPassword); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("verify with every slot busy: %v %v, want the context's error", ok, err)
	}
	if n := len(slots); n != cap(slots) {
		t.Fatalf("%d slots held, want %d (the cancelled wait took none)", n, cap(slots))
	}
	// One slot frees up: the next verification runs.
	slots.release()
	if ok, err := e.srv.verifyPassword(t.Context(), e.user, userPassword); !ok || err != nil {
		t.Fatalf("verify with a free slot: %v %v", ok, err)
	}
	for range cap(slots) - 1 {
		slots.release()
	}
}
