package passkey_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey/passkeytest"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

const issuer = "http://localhost:8080"

// browser carries the cookies the service sets from one request to the
// next, as a browser would.
type browser struct{ cookies []*http.Cookie }

func (b *browser) request() *http.Request {
	r := httptest.NewRequest(http.MethodPost, issuer+"/account", nil)
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	return r
}

func (b *browser) keep(w *httptest.ResponseRecorder) {
	b.cookies = append(b.cookies, w.Result().Cookies()...)
}

func newUser(t *testing.T, store *storage.Store, id string) *storage.User {
	t.Helper()
	u := &storage.User{ID: id, Email: id + "@example.com", Active: true}
	if err := store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// register gives u a passkey on a new authenticator, in browser b.
func register(t *testing.T, svc *passkey.Service, b *browser, u *storage.User) *passkeytest.Authenticator {
	t.Helper()
	ctx := context.Background()
	key := passkeytest.New(issuer, "localhost")
	w := httptest.NewRecorder()
	cer, err := svc.BeginRegistration(ctx, w, b.request(), u)
	if err != nil {
		t.Fatal(err)
	}
	b.keep(w)
	if _, err := svc.FinishRegistration(ctx, b.request(), u, cer.Handle, "key", key.Create(cer.Options, passkeytest.Tamper{})); err != nil {
		t.Fatal(err)
	}
	return key
}

// allowed are the credential ids a request's options list.
func allowed(t *testing.T, options string) []string {
	t.Helper()
	ids, err := passkeytest.AllowedCredentials(options)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A re-authentication asks for exactly the user's own passkeys, accepts
// an answer from one of them once, for the change it was begun for, in
// the browser it was begun in; another user's passkey is refused.
func TestReauth(t *testing.T) {
	store, _ := storagetest.Backend{Name: storage.DialectSQLite}.Open(t)
	svc, err := passkey.New(passkey.Config{Store: store, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ada, bob := newUser(t, store, "ada"), newUser(t, store, "bob")
	adas, bobs := &browser{}, &browser{}
	laptop, phone := register(t, svc, adas, ada), register(t, svc, adas, ada)
	bobKey := register(t, svc, bobs, bob)

	begin := func(b *browser, u *storage.User, action string) *passkey.Ceremony {
		t.Helper()
		w := httptest.NewRecorder()
		cer, err := svc.BeginReauth(ctx, w, b.request(), u, action)
		if err != nil {
			t.Fatal(err)
		}
		b.keep(w)
		return cer
	}

	cer := begin(adas, ada, "recovery_codes")
	want := passkeytest.CredentialIDs(laptop, phone)
	if got := allowed(t, cer.Options); !slices.Equal(got, want) {
		t.Errorf("ada's request lists %v, want her two passkeys %v", got, want)
	}
	if got := allowed(t, begin(bobs, bob, "recovery_codes").Options); !slices.Equal(got, passkeytest.CredentialIDs(bobKey)) {
		t.Errorf("bob's request lists %v, want his passkey alone", got)
	}

	// Bob's passkey answering Ada's request (in her browser) is refused,
	// and spends the ceremony.
	if err := svc.FinishReauth(ctx, adas.request(), ada, cer.Handle, "recovery_codes", bobKey.Get(cer.Options, passkeytest.Tamper{})); err == nil {
		t.Error("bob's passkey re-authenticated ada")
	}
	if err := svc.FinishReauth(ctx, adas.request(), ada, cer.Handle, "recovery_codes", laptop.Get(cer.Options, passkeytest.Tamper{})); !errors.Is(err, passkey.ErrExpired) {
		t.Errorf("the ceremony bob's passkey answered still took ada's: %v, want ErrExpired", err)
	}

	// For another change, or from another browser: no ceremony.
	cer = begin(adas, ada, "recovery_codes")
	if err := svc.FinishReauth(ctx, adas.request(), ada, cer.Handle, "totp_remove", phone.Get(cer.Options, passkeytest.Tamper{})); !errors.Is(err, passkey.ErrExpired) {
		t.Errorf("a ceremony for new recovery codes confirmed removing the app: %v, want ErrExpired", err)
	}
	cer = begin(adas, ada, "totp_remove")
	if err := svc.FinishReauth(ctx, bobs.request(), ada, cer.Handle, "totp_remove", phone.Get(cer.Options, passkeytest.Tamper{})); !errors.Is(err, passkey.ErrExpired) {
		t.Errorf("ada's ceremony finished from bob's browser: %v, want ErrExpired", err)
	}

	// Each of Ada's passkeys answers; a ceremony is used once.
	for _, k := range []*passkeytest.Authenticator{laptop, phone} {
		cer = begin(adas, ada, "totp_remove")
		answer := k.Get(cer.Options, passkeytest.Tamper{})
		if err := svc.FinishReauth(ctx, adas.request(), ada, cer.Handle, "totp_remove", answer); err != nil {
			t.Fatalf("ada's own passkey: %v", err)
		}
		if err := svc.FinishReauth(ctx, adas.request(), ada, cer.Handle, "totp_remove", answer); !errors.Is(err, passkey.ErrExpired) {
			t.Errorf("the same answer twice: %v, want ErrExpired", err)
		}
	}

	// A user without passkeys cannot begin one.
	carol := newUser(t, store, "carol")
	if _, err := svc.BeginReauth(ctx, httptest.NewRecorder(), (&browser{}).request(), carol, "recovery_codes"); !errors.Is(err, passkey.ErrUnknown) {
		t.Errorf("re-authentication of a user without passkeys: %v, want ErrUnknown", err)
	}
}
