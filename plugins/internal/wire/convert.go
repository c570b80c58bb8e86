package wire

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

func scopesToProto(s connectors.Scopes) *connectorpb.Scopes {
	return &connectorpb.Scopes{OfflineAccess: s.OfflineAccess, Groups: s.Groups}
}

func scopesFromProto(s *connectorpb.Scopes) connectors.Scopes {
	return connectors.Scopes{OfflineAccess: s.GetOfflineAccess(), Groups: s.GetGroups()}
}

func loginURLToProto(req connectors.LoginRequest) *connectorpb.LoginURLRequest {
	p := &connectorpb.LoginURLRequest{
		State:       req.State,
		CallbackUrl: req.CallbackURL,
		Scopes:      scopesToProto(req.Scopes),
		LoginHint:   req.LoginHint,
		PromptLogin: req.ForceLogin,
	}
	if req.MaxAge != nil {
		secs := int64(*req.MaxAge / time.Second)
		p.MaxAgeSeconds = &secs
	}
	return p
}

func loginURLFromProto(p *connectorpb.LoginURLRequest) connectors.LoginRequest {
	req := connectors.LoginRequest{
		State:       p.GetState(),
		CallbackURL: p.GetCallbackUrl(),
		Scopes:      scopesFromProto(p.GetScopes()),
		LoginHint:   p.GetLoginHint(),
		ForceLogin:  p.GetPromptLogin(),
	}
	if p.MaxAgeSeconds != nil {
		// Bounded so that the duration cannot overflow.
		secs := min(max(p.GetMaxAgeSeconds(), 0), maxAgeLimit)
		d := time.Duration(secs) * time.Second
		req.MaxAge = &d
	}
	return req
}

// maxAgeLimit bounds max_age_seconds (100 years).
const maxAgeLimit = 100 * 365 * 24 * 3600

func valuesToProto(v url.Values) map[string]*connectorpb.Values {
	if len(v) == 0 {
		return nil
	}
	m := make(map[string]*connectorpb.Values, len(v))
	for k, vs := range v {
		m[k] = &connectorpb.Values{Values: vs}
	}
	return m
}

func valuesFromProto(m map[string]*connectorpb.Values) url.Values {
	if len(m) == 0 {
		return nil
	}
	v := make(url.Values, len(m))
	for k, vs := range m {
		v[k] = vs.GetValues()
	}
	return v
}

func callbackToProto(req connectors.CallbackRequest) *connectorpb.HandleCallbackRequest {
	return &connectorpb.HandleCallbackRequest{
		ConnectorState: req.ConnectorState,
		CallbackUrl:    req.CallbackURL,
		Query:          valuesToProto(req.Query),
		Form:           valuesToProto(req.Form),
	}
}

func callbackFromProto(p *connectorpb.HandleCallbackRequest) connectors.CallbackRequest {
	return connectors.CallbackRequest{
		ConnectorState: p.GetConnectorState(),
		CallbackURL:    p.GetCallbackUrl(),
		Query:          valuesFromProto(p.GetQuery()),
		Form:           valuesFromProto(p.GetForm()),
	}
}

func identityToProto(id connectors.Identity) (*connectorpb.Identity, error) {
	var claims []byte
	if len(id.Claims) > 0 {
		var err error
		if claims, err = json.Marshal(id.Claims); err != nil {
			return nil, fmt.Errorf("encoding the identity's claims: %w", err)
		}
	}
	return &connectorpb.Identity{
		Subject:       id.Subject,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		Name:          id.Name,
		GivenName:     id.GivenName,
		FamilyName:    id.FamilyName,
		Picture:       id.Picture,
		Groups:        id.Groups,
		ClaimsJson:    claims,
		ConnectorData: id.ConnectorData,
		AuthTime:      unixSeconds(id.AuthTime),
		Amr:           id.AMR,
	}, nil
}

func identityFromProto(p *connectorpb.Identity) (connectors.Identity, error) {
	if p == nil {
		return connectors.Identity{}, fmt.Errorf("no identity in the answer")
	}
	id := connectors.Identity{
		Subject:       p.GetSubject(),
		Email:         p.GetEmail(),
		EmailVerified: p.GetEmailVerified(),
		Name:          p.GetName(),
		GivenName:     p.GetGivenName(),
		FamilyName:    p.GetFamilyName(),
		Picture:       p.GetPicture(),
		Groups:        p.GetGroups(),
		ConnectorData: p.GetConnectorData(),
		AMR:           p.GetAmr(),
	}
	if at := p.GetAuthTime(); at > 0 && at < maxAuthTime {
		id.AuthTime = time.Unix(at, 0).UTC()
	}
	if len(p.GetClaimsJson()) > 0 {
		if err := json.Unmarshal(p.GetClaimsJson(), &id.Claims); err != nil {
			return connectors.Identity{}, fmt.Errorf("decoding the identity's claims_json: %w", err)
		}
	}
	return id, nil
}

// maxAuthTime bounds auth_time (the year 9999): anything later is not a
// time and is ignored.
const maxAuthTime = 253402300799

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
