package broker

import (
	"context"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
)

// TestWriteAccessResponseAsFosite: the token endpoint's answer is fosite's
// WriteAccessResponse's, headers and body byte for byte.
func TestWriteAccessResponseAsFosite(t *testing.T) {
	newResp := func() fosite.AccessResponder {
		r := fosite.NewAccessResponse()
		r.SetAccessToken("eyJ.a.b")
		r.SetTokenType("bearer")
		r.SetExpiresIn(15 * time.Minute)
		r.SetScopes(fosite.Arguments{"openid", "offline_access", "<x>"})
		r.SetExtra("refresh_token", "rt.sig")
		r.SetExtra("id_token", "eyJ.c.d")
		return r
	}
	want := httptest.NewRecorder()
	(&fosite.Fosite{}).WriteAccessResponse(context.Background(), want, fosite.NewAccessRequest(newSession()), newResp())
	got := httptest.NewRecorder()
	writeAccessResponse(got, newResp())
	if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
		t.Errorf("got %d %v %s\nwant %d %v %s", got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
	}
}
