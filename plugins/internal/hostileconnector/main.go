// Command hostileconnector is a connector plugin built with the SDK that
// answers what no honest connector would: replies far beyond the host's
// size limit and identities whose fields break the limits one at a time.
// The plugins and federation tests launch it to show that the broker
// refuses such answers, stores nothing of them and keeps working.
//
// LoginURL, by login hint: "huge-state" answers with 40 MiB of connector
// state, "long-state" and "long-url" exceed the state and URL limits by
// one byte; any other hint starts a login at the configured issuer.
//
// HandleCallback, by code: "huge" answers with 40 MiB of connector data;
// "long-subject", "long-email", "long-name", "long-given-name",
// "long-family-name", "long-picture", "many-groups", "long-group",
// "long-claims" and "long-data" exceed one limit by one byte (or one
// group); "many-amr" and "long-amr" exceed the amr limits by one value (or
// byte), "odd-amr" sends an amr value with a quote and a space, "empty-amr"
// an empty one; "nul-name" puts a NUL byte in the name; "long-error" fails with
// a message of 1 MiB (it travels in the trailers); any other code logs the
// user "sub-<code>" in (so "refresh-huge" logs in "sub-refresh-huge").
// Refresh, by subject: "sub-refresh-huge" answers with 40 MiB of connector
// data, "sub-refresh-long-data" with connector data one byte over the
// limit; any other identity comes back as it is.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins"
	"github.com/bridgekeeper/bridgekeeper/plugins/sdk"
)

// huge is the size of the oversized answers: 40 times the host's limit.
const huge = 40 << 20

func main() { sdk.Serve(open) }

type connector struct {
	Issuer string `json:"issuer"`
	logger *slog.Logger
}

func open(_ context.Context, raw []byte, logger *slog.Logger) (connectors.Connector, error) {
	c := &connector{logger: logger}
	if err := json.Unmarshal(raw, c); err != nil || c.Issuer == "" {
		return nil, fmt.Errorf("hostile connector: issuer is required (%v)", err)
	}
	return c, nil
}

func (c *connector) LoginURL(_ context.Context, req connectors.LoginRequest) (connectors.LoginResponse, error) {
	q := url.Values{"state": {req.State}, "redirect_uri": {req.CallbackURL}}
	resp := connectors.LoginResponse{URL: c.Issuer + "/authorize?" + q.Encode(), ConnectorState: []byte("ok")}
	switch req.LoginHint {
	case "huge-state":
		resp.ConnectorState = make([]byte, huge)
	case "long-state":
		resp.ConnectorState = make([]byte, plugins.MaxConnectorStateBytes+1)
	case "long-url":
		resp.URL += "&pad=" + strings.Repeat("a", plugins.MaxLoginURLBytes)
	}
	c.logger.Info("login URL", "hint", req.LoginHint, "state_bytes", len(resp.ConnectorState), "url_bytes", len(resp.URL))
	return resp, nil
}

func (c *connector) HandleCallback(_ context.Context, req connectors.CallbackRequest) (connectors.Identity, error) {
	if string(req.ConnectorState) != "ok" {
		return connectors.Identity{}, fmt.Errorf("unknown connector state: %w", connectors.ErrInvalidCallback)
	}
	code := req.Query.Get("code")
	switch code {
	case "":
		return connectors.Identity{}, errors.New("no code")
	case "long-error":
		return connectors.Identity{}, errors.New(strings.Repeat("e", 1<<20))
	}
	id := connectors.Identity{
		Subject:       "sub-" + code,
		Email:         code + "@hostile.test",
		EmailVerified: true,
		Name:          "User " + code,
		Groups:        []string{"staff"},
		ConnectorData: []byte("data-" + code),
	}
	long := func(n int) string { return strings.Repeat("x", n+1) }
	switch code {
	case "huge":
		id.ConnectorData = make([]byte, huge)
	case "long-subject":
		id.Subject = long(plugins.MaxSubjectBytes)
	case "long-email":
		id.Email = long(plugins.MaxEmailBytes-len("@hostile.test")) + "@hostile.test"
	case "long-name":
		id.Name = long(plugins.MaxNameBytes)
	case "long-given-name":
		id.GivenName = long(plugins.MaxNameBytes)
	case "long-family-name":
		id.FamilyName = long(plugins.MaxNameBytes)
	case "long-picture":
		id.Picture = "https://hostile.test/" + long(plugins.MaxPictureBytes-len("https://hostile.test/"))
	case "many-groups":
		id.Groups = make([]string, plugins.MaxGroups+1)
		for i := range id.Groups {
			id.Groups[i] = fmt.Sprint("g", i)
		}
	case "long-group":
		id.Groups = []string{"staff", long(plugins.MaxGroupBytes)}
	case "long-claims":
		id.Claims = map[string]any{"pad": long(plugins.MaxClaimsJSONBytes)}
	case "long-data":
		id.ConnectorData = []byte(long(plugins.MaxConnectorDataBytes))
	case "nul-name":
		id.Name = "User\x00" + code
	case "many-amr":
		id.AMR = make([]string, plugins.MaxAMR+1)
		for i := range id.AMR {
			id.AMR[i] = fmt.Sprint("m", i)
		}
	case "long-amr":
		id.AMR = []string{"pwd", long(plugins.MaxAMRValueBytes)}
	case "odd-amr":
		id.AMR = []string{"pwd", `mfa" onload`}
	case "empty-amr":
		id.AMR = []string{"pwd", ""}
	}
	c.logger.Info("callback", "code", code)
	return id, nil
}

func (c *connector) Refresh(_ context.Context, _ connectors.Scopes, id connectors.Identity) (connectors.Identity, error) {
	switch id.Subject {
	case "sub-refresh-huge":
		id.ConnectorData = make([]byte, huge)
	case "sub-refresh-long-data":
		id.ConnectorData = []byte(strings.Repeat("x", plugins.MaxConnectorDataBytes+1))
	}
	return id, nil
}
