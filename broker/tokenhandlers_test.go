package broker

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestUnhandledSkippedKeepsFositeAnswers checks what unhandledSkipped
// relies on: every one of fosite's token endpoint handlers is wrapped, and
// each answers ErrUnknownRequest (or nothing) to Populate for a grant it
// does not handle, so skipping the call changes nothing. A fosite upgrade
// that breaks this fails here.
func TestUnhandledSkippedKeepsFositeAnswers(t *testing.T) {
	e := newTestEnv(t, storagetest.Backend{Name: storage.DialectSQLite}, nil)
	ctx := context.Background()
	wrapped := 0
	for _, h := range e.srv.provider.Config.GetTokenEndpointHandlers(ctx) {
		w, ok := h.(unhandledSkipped)
		if !ok {
			if typ := reflect.Indirect(reflect.ValueOf(h)).Type(); strings.HasPrefix(typ.PkgPath(), "github.com/ory/fosite") {
				t.Errorf("%T is not wrapped", h)
			}
			continue
		}
		wrapped++
		for _, grant := range []string{"authorization_code", "refresh_token", "client_credentials", "password", "urn:other"} {
			req := fosite.NewAccessRequest(newSession())
			req.GrantTypes = fosite.Arguments{grant}
			if w.CanHandleTokenEndpointRequest(ctx, req) {
				continue
			}
			err := w.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, fosite.NewAccessResponse())
			if err != nil && !errors.Is(err, fosite.ErrUnknownRequest) {
				t.Errorf("%T for %s: %v, want ErrUnknownRequest", w.TokenEndpointHandler, grant, err)
			}
			if err := w.PopulateTokenEndpointResponse(ctx, req, fosite.NewAccessResponse()); err != fosite.ErrUnknownRequest {
				t.Errorf("wrapped %T for %s: %v", w.TokenEndpointHandler, grant, err)
			}
		}
	}
	if wrapped != 6 {
		t.Errorf("%d handlers wrapped, want fosite's six (code, client credentials, refresh, their OpenID Connect parts, PKCE)", wrapped)
	}
}
