package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/ory/fosite"
)

// refreshScope is a token endpoint handler for the refresh grant, after
// fosite's (which restores the grant's scopes and ignores the request's
// scope parameter): a scope parameter narrows what this refresh issues
// (RFC 6749 section 6). The access token, its introspection, the response
// and the ID token (its claims, and whether there is one) carry only the
// asked scopes; a scope the grant does not hold is invalid_scope. The
// rotated refresh token keeps the grant's scopes — section 6: its scope
// "MUST be identical to that of the refresh token included by the client
// in the request" — so a later refresh without scope gets the whole grant
// again (storage.TokenStore.CreateRefreshTokenSession writes them).
type refreshScope struct{}

func (refreshScope) HandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) error {
	asked := fosite.RemoveEmpty(strings.Split(req.GetRequestForm().Get("scope"), " "))
	if len(asked) == 0 {
		return nil
	}
	grant := req.GetGrantedScopes()
	for _, s := range asked {
		if !grant.Has(s) {
			return fosite.ErrInvalidScope.WithHintf("The scope %q is not part of this grant; a refresh may only narrow the scope.", s)
		}
	}
	sess, ok := req.GetSession().(*session)
	ar, ok2 := req.(*fosite.AccessRequest)
	if !ok || !ok2 {
		return fosite.ErrServerError.WithDebug("refresh scope: unexpected request or session type")
	}
	sess.GrantScopes = slices.Clone(grant)
	ar.GrantedScope = slices.DeleteFunc(slices.Clone(grant), func(s string) bool { return !slices.Contains(asked, s) })
	return nil
}

func (refreshScope) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return fosite.ErrUnknownRequest
}

func (refreshScope) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (refreshScope) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne("refresh_token")
}
