// Command testconnector is a connector plugin for the plugins package's
// tests. It logs users in without an upstream, and can be told through the
// login hint and the callback's code to hang, crash, panic or fail.
//
// Login hints: "hang" blocks until the call's deadline, "exit" ends the
// process mid-call, "panic" panics, "javascript" and "relative" answer a
// URL that is not an absolute http(s) URL. Config hang_open makes Open
// block until Configure's deadline. Callback codes: "no-email" is a policy
// refusal, "policy-secret" one whose error text holds a secret,
// "policy-message" one with a user message, "policy-bad-message" one with
// a user message the host must drop, "internal" a plain error, "no-subject" an identity without a
// subject; an error parameter is an upstream refusal; an upstream
// parameter is a URL fetched (through upstreamtime.Transport) before
// answering; any other code logs the user "sub-<code>" in. Refresh refuses identities whose connector data
// is "refresh-revoked" and answers for another subject when it is
// "refresh-other-subject".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/connectors/upstreamtime"
	"github.com/bridgekeeper/bridgekeeper/plugins/sdk"
)

func main() {
	sdk.Serve(open)
}

type config struct {
	Issuer string `json:"issuer"`
	// NoRefresh builds a connector without Refresh.
	NoRefresh bool `json:"no_refresh"`
	// FailOpen makes Open fail with this message.
	FailOpen string `json:"fail_open"`
	// HangOpen makes Open block until Configure's deadline.
	HangOpen bool `json:"hang_open"`
}

func open(ctx context.Context, raw []byte, logger *slog.Logger) (connectors.Connector, error) {
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("test connector config: %w", err)
	}
	if cfg.HangOpen {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if cfg.FailOpen != "" {
		return nil, errors.New(cfg.FailOpen)
	}
	if cfg.Issuer == "" {
		return nil, errors.New("test connector config: issuer is required")
	}
	logger.Info("test connector configured", "issuer", cfg.Issuer)
	fmt.Println("a plain line on standard output")
	c := &connector{issuer: cfg.Issuer, logger: logger}
	if cfg.NoRefresh {
		return callbackOnly{c}, nil
	}
	return c, nil
}

// callbackOnly hides connector's Refresh method.
type callbackOnly struct{ connectors.CallbackConnector }

type connector struct {
	issuer string
	logger *slog.Logger
}

func (c *connector) LoginURL(ctx context.Context, req connectors.LoginRequest) (connectors.LoginResponse, error) {
	switch req.LoginHint {
	case "hang":
		c.logger.Info("hanging", "state", req.State)
		<-ctx.Done()
		return connectors.LoginResponse{}, ctx.Err()
	case "exit":
		c.logger.Warn("exiting mid-call")
		os.Exit(2)
	case "panic":
		panic("told to panic")
	case "javascript":
		return connectors.LoginResponse{URL: "javascript:alert(document.domain)//https://idp.test/"}, nil
	case "relative":
		return connectors.LoginResponse{URL: "/authorize?state=" + req.State}, nil
	}
	// Debug, as a real connector's per-login lines would be: at the
	// broker's default level (info) the plugin does not even write it.
	c.logger.Debug("login started", "state", req.State)
	q := url.Values{"state": {req.State}, "redirect_uri": {req.CallbackURL}}
	scopes := []string{"openid"}
	if req.Scopes.OfflineAccess {
		scopes = append(scopes, "offline_access")
	}
	if req.Scopes.Groups {
		scopes = append(scopes, "groups")
	}
	q.Set("scope", strings.Join(scopes, " "))
	if req.LoginHint != "" {
		q.Set("login_hint", req.LoginHint)
	}
	return connectors.LoginResponse{
		URL:            c.issuer + "/authorize?" + q.Encode(),
		ConnectorState: []byte("nonce-" + req.State),
	}, nil
}

func (c *connector) HandleCallback(ctx context.Context, req connectors.CallbackRequest) (connectors.Identity, error) {
	state := req.ConnectorState
	if e := req.Query.Get("error"); e != "" {
		return connectors.Identity{}, fmt.Errorf("upstream answered %s: %w", e, connectors.ErrUpstreamDenied)
	}
	if !strings.HasPrefix(string(state), "nonce-") {
		return connectors.Identity{}, fmt.Errorf("unknown connector state %q: %w", state, connectors.ErrInvalidCallback)
	}
	if u := req.Query.Get("upstream"); u != "" {
		if err := fetch(ctx, u); err != nil {
			return connectors.Identity{}, err
		}
	}
	code := req.Query.Get("code")
	if code == "" {
		code = req.Form.Get("code")
	}
	switch code {
	case "":
		return connectors.Identity{}, fmt.Errorf("no code in the callback: %w", connectors.ErrInvalidCallback)
	case "no-email":
		return connectors.Identity{}, fmt.Errorf("the upstream gave no e-mail: %w", connectors.ErrPolicy)
	case "policy-secret":
		// Raw error text that must stay in the broker's log.
		return connectors.Identity{}, fmt.Errorf("%w: token response access_token=SECRET-at-123 has no email", connectors.ErrPolicy)
	case "policy-message":
		return connectors.Identity{}, connectors.WithUserMessage(
			fmt.Errorf("%w: access_token=SECRET-at-456: hd is other.test", connectors.ErrPolicy),
			"Sign in with your example.test work account.")
	case "policy-bad-message":
		return connectors.Identity{}, connectors.WithUserMessage(
			fmt.Errorf("%w: access_token=SECRET-at-789", connectors.ErrPolicy),
			"line one\nline two access_token=SECRET-at-789")
	case "internal":
		return connectors.Identity{}, errors.New("the token endpoint answered 500")
	case "no-subject":
		return connectors.Identity{Email: "x@example.test"}, nil
	}
	return connectors.Identity{
		Subject:       "sub-" + code,
		Email:         code + "@example.test",
		EmailVerified: true,
		Name:          "User " + code,
		GivenName:     "User",
		FamilyName:    code,
		Picture:       c.issuer + "/pictures/" + code,
		Groups:        []string{"admins", "devs"},
		Claims:        map[string]any{"department": "eng", "level": 3.0, "callback": req.CallbackURL},
		ConnectorData: []byte("refresh-" + code),
	}, nil
}

func (c *connector) Refresh(_ context.Context, scopes connectors.Scopes, id connectors.Identity) (connectors.Identity, error) {
	if string(id.ConnectorData) == "refresh-revoked" {
		return connectors.Identity{}, fmt.Errorf("user %s is disabled upstream: %w", id.Subject, connectors.ErrIdentityRevoked)
	}
	if string(id.ConnectorData) == "refresh-other-subject" {
		id.Subject += "-other"
		return id, nil
	}
	id.Name += " (refreshed)"
	if scopes.Groups {
		id.Groups = append(id.Groups, "refreshed")
	}
	return id, nil
}

// fetch reads u as a connector reads its upstream's answers.
func fetch(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("upstream request: %w", err)
	}
	resp, err := (&http.Client{Transport: upstreamtime.Transport(nil)}).Do(req)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
