package accounts_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

type discardMailer struct{}

func (discardMailer) Send(context.Context, mail.Message) error { return nil }

// BenchmarkResetRequest measures the work behind a reset request for a
// known and an unknown address, without the response-time floor: both must
// stay well under Config.MinResponseTime (400ms), which then hides the
// difference.
func BenchmarkResetRequest(b *testing.B) {
	store, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(b)
	h := benchHarness(b, store)
	now := time.Now()
	if err := store.CreateUser(context.Background(), &storage.User{ID: accounts.NewUserID(), Email: adaEmail, Active: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	page := h.get("/reset")
	for _, tc := range []struct{ name, email string }{{"known", adaEmail}, {"unknown", "nobody@example.test"}} {
		b.Run(tc.name, func(b *testing.B) {
			h.t = b
			for b.Loop() {
				if r := h.submitOn(page, "", url.Values{"email": {tc.email}}); r.status != http.StatusOK {
					b.Fatalf("status %d", r.status)
				}
			}
		})
	}
}

// BenchmarkRegister measures a registration (policy check, argon2id hash,
// insert, activation token) without the floor.
func BenchmarkRegister(b *testing.B) {
	store, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(b)
	h := benchHarness(b, store)
	page := h.get("/register")
	i := 0
	for b.Loop() {
		i++
		r := h.submitOn(page, "", url.Values{"email": {"user" + strconv.Itoa(i) + "@example.test"}, "password": {adaPass}})
		if r.status != http.StatusOK {
			b.Fatalf("status %d", r.status)
		}
	}
}

func benchHarness(b *testing.B, store *storage.Store) *harness {
	off := accounts.Limit{Max: -1}
	return newHarness(b, store, func(c *accounts.Config) {
		c.Mailer = discardMailer{}
		c.Limits = accounts.Limits{
			Register: accounts.ActionLimits{PerAccount: off, PerIP: off},
			Reset:    accounts.ActionLimits{PerAccount: off, PerIP: off},
		}
	})
}
