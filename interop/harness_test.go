package interop

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
	"github.com/bridgekeeper/bridgekeeper/rp"
)

// The binaries, processes and tool checks are internal/testenv's.
func TestMain(m *testing.M) { testenv.Main(m) }

// An apiKind starts one implementation of the demo API (profile, checkout
// with scope "checkout") against an issuer, or skips the test when its
// runtime is missing. The APIs of docs/rp.md (goapi, api.mjs, bkjwt.py and
// django_api.py) run with the settings the document shows.
type apiKind struct {
	name  string
	start func(t *testing.T, issuer, audience string) string
	// newKeyDelay is how long after the API's last JWKS fetch a token of a
	// key published since may still be refused: its rate limit on refetches
	// for unknown kids (the rotation tests wait up to this, plus slack).
	newKeyDelay time.Duration
	// downIs503 says the API answers 503 when it needs the JWKS and cannot
	// fetch it (PyJWT 2.6 does not tell that apart from a bad token).
	downIs503 bool
}

var apiKinds = []apiKind{
	{name: "go-rp", start: startGoAPI, downIs503: true},
	{name: "go-rp-snippet", start: startGoSnippetAPI, newKeyDelay: rp.DefaultRefetchInterval, downIs503: true},
	{name: "node-jose", start: startNodeAPI, newKeyDelay: nodeCooldown, downIs503: true},
	{name: "python-pyjwt", start: startPythonAPI},
	{name: "django-pyjwt", start: startDjangoAPI},
}

// nodeCooldown is api.mjs's cooldownDuration.
const nodeCooldown = 5 * time.Second

func startGoAPI(t *testing.T, issuer, audience string) string {
	return testenv.Start(t, exec.Command(testenv.Binary(t, "./cmd/example-api"), "--issuer", issuer, "--audience", audience,
		"--listen", "127.0.0.1:0", "--refetch-interval", "0s", "--issuer-wait", "5s")).WaitListening(t)
}

// startGoSnippetAPI runs interop/goapi, docs/rp.md's Go program, with rp's
// defaults.
func startGoSnippetAPI(t *testing.T, issuer, audience string) string {
	cmd := testenv.Command(testenv.Binary(t, "./interop/goapi"), []string{"ISSUER=" + issuer, "AUDIENCE=" + audience, "LISTEN=127.0.0.1:0"})
	return testenv.Start(t, cmd).WaitListening(t)
}

func startNodeAPI(t *testing.T, issuer, audience string) string {
	node := testenv.Tool(t, "node", "node (Debian: apt-get install -y nodejs)")
	testenv.Require(t, testenv.FileExists("node/node_modules/jose/package.json"), "npm jose (npm ci --prefix interop/node, or make npm-deps)")
	cmd := testenv.Command(node, []string{"ISSUER=" + issuer, "AUDIENCE=" + audience, "LISTEN=127.0.0.1:0"}, "api.mjs")
	cmd.Dir = "node"
	return testenv.Start(t, cmd).WaitListening(t)
}

var pythonOnce struct {
	sync.Once
	path string
}

// python returns an interpreter that has PyJWT and cryptography: the one on
// PATH, or Debian's when PATH leads elsewhere (pyenv, a virtualenv).
func python(t *testing.T) string {
	pythonOnce.Do(func() { pythonOnce.path = findPython("jwt, cryptography") })
	testenv.Require(t, pythonOnce.path != "", "python3 with PyJWT (apt-get install -y python3-jwt)")
	return pythonOnce.path
}

var djangoOnce struct {
	sync.Once
	path string
}

// django returns an interpreter that has Django and PyJWT.
func django(t *testing.T) string {
	djangoOnce.Do(func() { djangoOnce.path = findPython("django, jwt, cryptography") })
	testenv.Require(t, djangoOnce.path != "", "python3 with Django and PyJWT (apt-get install -y python3-django python3-jwt)")
	return djangoOnce.path
}

func findPython(modules string) string {
	for _, candidate := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(candidate)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import "+modules).Run() == nil {
			return path
		}
	}
	return ""
}

func startDjangoAPI(t *testing.T, issuer, audience string) string {
	cmd := testenv.Command(django(t), []string{"ISSUER=" + issuer, "AUDIENCE=" + audience, "LISTEN=127.0.0.1:0",
		"PYTHONDONTWRITEBYTECODE=1"}, "django_api.py")
	cmd.Dir = "python"
	return testenv.Start(t, cmd).WaitListening(t)
}

func startPythonAPI(t *testing.T, issuer, audience string) string {
	cmd := testenv.Command(python(t), []string{"ISSUER=" + issuer, "AUDIENCE=" + audience, "LISTEN=127.0.0.1:0",
		"PYTHONDONTWRITEBYTECODE=1"}, "api.py")
	cmd.Dir = "python"
	return testenv.Start(t, cmd).WaitListening(t)
}

// reply is an API's answer.
type reply struct {
	Status      int    `json:"-"`
	Challenge   string `json:"-"` // WWW-Authenticate
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Subject     string `json:"sub"`
}

func call(t *testing.T, method, url, token string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Challenge: resp.Header.Get("WWW-Authenticate")}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s %s: %d, body is not JSON: %q", method, url, resp.StatusCode, body)
	}
	r.Status = resp.StatusCode
	r.Challenge = resp.Header.Get("WWW-Authenticate")
	return r
}

// expect checks the outcome of presenting token to url: 200 with subject
// sub, or the given status and error code.
func expect(t *testing.T, what, url, token string, status int, errorCode, sub string) {
	t.Helper()
	r := call(t, http.MethodGet, url, token)
	if r.Status != status || r.Error != errorCode || (sub != "" && r.Subject != sub) {
		t.Errorf("%s: got %d error=%q sub=%q (WWW-Authenticate %q), want %d error=%q sub=%q",
			what, r.Status, r.Error, r.Subject, r.Challenge, status, errorCode, sub)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.Challenge, "Bearer") {
		t.Errorf("%s: 401 without a Bearer challenge: %q", what, r.Challenge)
	}
}

// expectNewKey checks that a token signed by a key published after the API's
// last JWKS fetch is accepted within the API's newKeyDelay (plus slack for a
// loaded machine): a rotation reaches a running API without a restart. Until
// then the API may answer 401 (unknown key) or, after a failed fetch, 503.
func expectNewKey(t *testing.T, kind apiKind, what, url, token, sub string) {
	t.Helper()
	deadline := time.Now().Add(kind.newKeyDelay + 5*time.Second)
	for {
		r := call(t, http.MethodGet, url, token)
		if r.Status == http.StatusOK && r.Subject == sub {
			return
		}
		retry := r.Status == http.StatusUnauthorized || r.Status == http.StatusServiceUnavailable
		if !retry || time.Now().After(deadline) {
			t.Errorf("%s: got %d error=%q sub=%q (WWW-Authenticate %q), want 200 sub=%q within %v",
				what, r.Status, r.Error, r.Subject, r.Challenge, sub, kind.newKeyDelay)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}
