package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// TestUserCommandsEndSessionsAndGrants backs README.md's command table:
// `user disable`, `user set-password` and `user delete` end the user's
// broker sessions and revoke their refresh tokens, against a running
// `bridgekeeper serve` on the same database: afterwards the user's refresh
// token is invalid_grant and prompt=none in the user's browser is
// login_required. A user the commands did not name keeps both.
func TestUserCommandsEndSessionsAndGrants(t *testing.T) {
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "bk.db")
	addr := testenv.FreeAddr(t)
	issuer := "http://" + addr
	const redirect = "http://127.0.0.1:5173/callback"
	const pw = "correct horse battery staple"
	if _, _, err := run(t, "", "client", "create", "--dsn", dsn, "--id", "spa", "--public", "--redirect-uri", redirect,
		"--grant", "authorization_code", "--grant", "refresh_token"); err != nil {
		t.Fatal(err)
	}
	users := []string{"ada@example.com", "bea@example.com", "cy@example.com", "dan@example.com"}
	for _, email := range users {
		if _, _, err := run(t, pw+"\n", "user", "create", "--dsn", dsn, "--email", email, "--password-stdin"); err != nil {
			t.Fatal(err)
		}
	}
	serveInProcess(t, "--issuer", issuer, "--listen", addr, "--dsn", dsn)
	if status, _ := getStatus(t, issuer+"/healthz"); status != http.StatusOK {
		t.Fatalf("healthz: %d", status)
	}

	loginRe := regexp.MustCompile(`name="login" value="([^"]+)"`)
	type signedIn struct {
		browser *http.Client
		refresh string
	}
	authorize := func(c *http.Client, extra url.Values) (*http.Response, string) {
		t.Helper()
		verifier := rand.Text() + rand.Text()
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {redirect},
			"scope": {"openid offline_access"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			q[k] = v
		}
		res, err := c.Get(issuer + "/oauth2/auth?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return res, verifier
	}
	token := func(form url.Values) (int, map[string]any) {
		t.Helper()
		res, err := http.PostForm(issuer+"/oauth2/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	codeOf := func(res *http.Response) url.Values {
		t.Helper()
		loc, err := url.Parse(res.Header.Get("Location"))
		if err != nil || !strings.HasPrefix(loc.String(), redirect) {
			t.Fatalf("want a redirect to the client, got %d %q", res.StatusCode, res.Header.Get("Location"))
		}
		return loc.Query()
	}
	signIn := func(email string) signedIn {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != addr {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		res, verifier := authorize(c, nil)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := loginRe.FindStringSubmatch(string(body))
		if m == nil {
			t.Fatalf("no login page: %d %.300s", res.StatusCode, body)
		}
		res, err := c.PostForm(issuer+"/login", url.Values{"login": {m[1]}, "email": {email}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		status, tr := token(url.Values{"grant_type": {"authorization_code"}, "code": {codeOf(res).Get("code")},
			"redirect_uri": {redirect}, "client_id": {"spa"}, "code_verifier": {verifier}})
		rt, _ := tr["refresh_token"].(string)
		if status != http.StatusOK || rt == "" {
			t.Fatalf("%s: code exchange %d %v", email, status, tr)
		}
		return signedIn{browser: c, refresh: rt}
	}
	// alive reports whether the user's refresh token refreshes and the
	// browser's session signs in silently.
	alive := func(s *signedIn) (refreshes bool, silent url.Values) {
		t.Helper()
		status, tr := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.refresh}, "client_id": {"spa"}})
		if status == http.StatusOK {
			s.refresh, _ = tr["refresh_token"].(string)
		} else if tr["error"] != "invalid_grant" {
			t.Errorf("refresh: %d %v, want 200 or invalid_grant", status, tr)
		}
		res, _ := authorize(s.browser, url.Values{"prompt": {"none"}})
		res.Body.Close()
		return status == http.StatusOK, codeOf(res)
	}

	sessions := map[string]*signedIn{}
	for _, email := range users {
		s := signIn(email)
		sessions[email] = &s
	}
	for _, cmd := range [][]string{
		{"disable", users[0]},
		{"set-password", users[1]},
		{"delete", users[2]},
	} {
		stdin := ""
		if cmd[0] == "set-password" {
			stdin = "a new and rather long password\n"
		}
		if out, _, err := run(t, stdin, "user", cmd[0], "--dsn", dsn, cmd[1]); err != nil {
			t.Fatalf("user %s: %v %s", cmd[0], err, out)
		}
	}
	for i, email := range users {
		refreshes, silent := alive(sessions[email])
		if i < 3 {
			if refreshes || silent.Get("code") != "" || silent.Get("error") != "login_required" {
				t.Errorf("%s after the command: refresh works %v, prompt=none %v; want invalid_grant and login_required", email, refreshes, silent)
			}
			continue
		}
		if !refreshes || silent.Get("code") == "" {
			t.Errorf("%s, named by no command: refresh works %v, prompt=none %v; want both alive", email, refreshes, silent)
		}
	}
}
