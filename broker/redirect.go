package broker

import (
	"context"
	"net/http"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/internal/redirecturi"
)

// newAuthorizeRequest is fosite's NewAuthorizeRequest with the broker's
// redirect URI rule (package redirecturi) on top: fosite lets any client's
// http URI on a loopback IP match any port and compares decoded paths,
// which is wider than RFC 8252 §7.3 and RFC 9700 §4.1.3. Its matcher
// cannot be replaced, so a requested redirect_uri fosite accepted is
// checked again here: byte for byte, with the port exception only for a
// public client's http loopback IP URI. A refused one returns a nil
// requester, so the error is shown on the broker's page, never sent to
// the URI. Every authorization request (the first one and its
// re-validation after the login) comes through here; the token endpoint
// then requires the very same string (fosite compares the two forms).
func (s *Server) newAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil || ar == nil {
		return ar, err
	}
	if !redirectMatches(ar) {
		return nil, fosite.ErrInvalidRequest.WithHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")
	}
	setGrantID(ar)
	return ar, nil
}

// redirectMatches reports whether the request's redirect_uri may receive
// the answer by the broker's rule (see newAuthorizeRequest). Use it
// together with fosite's IsRedirectURIValid, which is looser.
func redirectMatches(ar fosite.AuthorizeRequester) bool {
	client := ar.GetClient()
	if client == nil {
		return false
	}
	requested := ar.GetRequestForm().Get("redirect_uri")
	if requested == "" {
		// fosite uses the client's only registered URI, which was
		// checked when the client was registered.
		return true
	}
	return redirecturi.Match(client.GetRedirectURIs(), requested, client.IsPublic())
}
