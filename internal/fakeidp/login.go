package fakeidp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Login acts as the user's browser at an authorization URL the fake IdP
// serves: it loads the login page, presses the button for subject and
// returns where the IdP redirects the browser (the client's callback with
// code and state), without following it.
func Login(ctx context.Context, authURL, subject string) (*url.URL, error) {
	return submit(ctx, authURL, url.Values{"subject": {subject}})
}

// LoginWithPassword is Login through the e-mail and password form.
func LoginWithPassword(ctx context.Context, authURL, email, password string) (*url.URL, error) {
	return submit(ctx, authURL, url.Values{"email": {email}, "password": {password}})
}

// Deny presses Cancel on the login page and returns the redirect, which
// carries error=access_denied.
func Deny(ctx context.Context, authURL string) (*url.URL, error) {
	return submit(ctx, authURL, url.Values{"action": {"deny"}})
}

func submit(ctx context.Context, authURL string, fields url.Values) (*url.URL, error) {
	browser := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("parse authorization URL: %w", err)
	}
	page, err := send(ctx, browser, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("load login page: %w", err)
	}
	if page.Header.Get("Location") != "" {
		// The IdP refused the request outright and sent the browser back.
		return page.Location()
	}
	if page.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("login page answered %s", page.Status)
	}
	form := u.Query()
	for k, v := range fields {
		form[k] = v
	}
	action := *u
	action.RawQuery = ""
	resp, err := send(ctx, browser, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("submit login form: %w", err)
	}
	loc, err := resp.Location()
	if errors.Is(err, http.ErrNoLocation) {
		return nil, fmt.Errorf("login refused: %s", resp.Status)
	}
	return loc, err
}

func send(ctx context.Context, c *http.Client, method, target string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}
