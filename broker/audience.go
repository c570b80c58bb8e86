package broker

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// errInvalidTarget is the RFC 8707 section 2 error for a resource (or
// audience) the client may not ask for.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is invalid, missing, unknown, or malformed.",
	CodeField:        http.StatusBadRequest,
}

// exactAudience is fosite's audience strategy: every requested audience
// must be one of the client's Audiences, compared as exact strings.
func exactAudience(allowed, requested []string) error {
	for _, a := range requested {
		if !slices.Contains(allowed, a) {
			return errInvalidTarget.WithHintf("The client may not request the audience %q.", a)
		}
	}
	return nil
}

// resourceParams returns the RFC 8707 resource parameters of form. Each
// must be an absolute URI without a fragment.
func resourceParams(form url.Values) ([]string, error) {
	res := form["resource"]
	for _, r := range res {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Fragment != "" || u.RawFragment != "" || len(r) > 0 && r[len(r)-1] == '#' {
			return nil, errInvalidTarget.WithHintf("The resource %q must be an absolute URI without a fragment.", r)
		}
	}
	return res, nil
}

// requestResources adds the request's resource parameters to its requested
// audience (fosite already checked the audience parameter), after checking
// them against the client's Audiences. Used on authorization and
// client_credentials requests.
func requestResources(ar fosite.Requester) error {
	res, err := resourceParams(ar.GetRequestForm())
	if err != nil || len(res) == 0 {
		return err
	}
	if err := exactAudience(ar.GetClient().GetAudience(), res); err != nil {
		return err
	}
	aud := slices.Clone(ar.GetRequestedAudience())
	for _, r := range res {
		if !slices.Contains(aud, r) {
			aud = append(aud, r)
		}
	}
	ar.SetRequestedAudience(aud)
	return nil
}

// narrowAudience handles resource and audience parameters on the
// authorization_code and refresh_token grants (after fosite restored the
// grant): they may only pick a subset of the grant's audience, which then
// becomes the new access token's audience. The grant itself (what the
// refresh token carries) is unchanged, so a later refresh may ask for the
// rest again; nothing can widen it.
func narrowAudience(ar fosite.AccessRequester) error {
	form := ar.GetRequestForm()
	res, err := resourceParams(form)
	if err != nil {
		return err
	}
	want := append(fosite.GetAudiences(form), res...)
	if len(want) == 0 {
		return nil
	}
	var grant []string
	if ar.GetGrantTypes().ExactOne("refresh_token") {
		grant = ar.GetGrantedAudience() // fosite granted the original grant's audience
	} else {
		// The code's audience is granted later, in the same way as
		// finishAuthorize did: what was requested, else the defaults.
		grant = ar.GetRequestedAudience()
		if c, ok := ar.GetClient().(*storage.Client); ok && len(grant) == 0 {
			grant = c.DefaultAudiences
		}
	}
	narrowed := make([]string, 0, len(want))
	for _, a := range want {
		if !slices.Contains(grant, a) {
			return errInvalidTarget.WithHintf("The resource %q is not part of this grant.", a)
		}
		if !slices.Contains(narrowed, a) {
			narrowed = append(narrowed, a)
		}
	}
	sess, ok := ar.GetSession().(*session)
	if !ok {
		return fosite.ErrServerError.WithDebug("narrow audience: unexpected session")
	}
	sess.AccessAudience = narrowed
	return nil
}
