package plugins

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	connectorpb "github.com/bridgekeeper/bridgekeeper/plugins/proto"
)

func scopesToProto(s connectors.Scopes) *connectorpb.Scopes {
	return &connectorpb.Scopes{OfflineAccess: s.OfflineAccess, Groups: s.Groups}
}

func scopesFromProto(s *connectorpb.Scopes) connectors.Scopes {
	return connectors.Scopes{OfflineAccess: s.GetOfflineAccess(), Groups: s.GetGroups()}
}

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
	}
	if len(p.GetClaimsJson()) > 0 {
		if err := json.Unmarshal(p.GetClaimsJson(), &id.Claims); err != nil {
			return connectors.Identity{}, fmt.Errorf("decoding the identity's claims_json: %w", err)
		}
	}
	return id, nil
}
