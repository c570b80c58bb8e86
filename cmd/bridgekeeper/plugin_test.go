package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// checkPlugin runs `bridgekeeper plugin check` on the named plugin (built
// from this repository) or path, with the configuration text written to a
// file.
func checkPlugin(t *testing.T, path, config string, args ...string) (string, error) {
	t.Helper()
	if !filepath.IsAbs(path) {
		pkg := "./plugins/internal/" + path
		if path == "connector-facebook" {
			pkg = "./cmd/" + path
		}
		path = testenv.Binary(t, pkg)
	}
	args = append([]string{"plugin", "check", "--path", path}, args...)
	if config != "" {
		file := filepath.Join(t.TempDir(), "connector.yaml")
		if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", file)
	}
	out, _, err := run(t, "", args...)
	return out, err
}

func TestPluginCheckBuiltInConnector(t *testing.T) {
	out, err := checkPlugin(t, "connector-facebook", "client_id: abc\nclient_secret: def\n")
	if err != nil || !strings.Contains(out, "All checks passed.") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
	for _, want := range []string{"ok    Configure accepted", "ok    LoginURL sends the browser to https://www.facebook.com/", "ok    health check: SERVING"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A configuration the connector refuses is said as such, with its words.
	out, err = checkPlugin(t, "connector-facebook", "{}")
	if !errors.Is(err, errCheckFailed) || !strings.Contains(out, "FAIL  Configure: ") || !strings.Contains(out, "refused its configuration") {
		t.Errorf("refused configuration: err %v, output:\n%s", err, out)
	}
}

func TestPluginCheckMissingFile(t *testing.T) {
	out, err := checkPlugin(t, filepath.Join(t.TempDir(), "no-such-plugin"), "")
	if !errors.Is(err, errCheckFailed) || !strings.Contains(out, "FAIL  executable: ") || !strings.Contains(out, "no such file") {
		t.Errorf("err %v, output:\n%s", err, out)
	}
}

func TestPluginCheckNotAPlugin(t *testing.T) {
	script := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := checkPlugin(t, script, "")
	if !errors.Is(err, errCheckFailed) || !strings.Contains(out, "FAIL  handshake: ") ||
		!strings.Contains(out, `printed "hello" on standard output instead of the handshake line`) ||
		!strings.Contains(out, "hint: this does not look like a connector plugin") {
		t.Errorf("err %v, output:\n%s", err, out)
	}
	if strings.Contains(out, "This usually means") {
		t.Errorf("go-plugin's generic advice in the report:\n%s", out)
	}
}

func TestPluginCheckHostilePlugin(t *testing.T) {
	for _, tc := range []struct {
		plugin, config string
		args           []string
		want           []string
	}{
		{"hostileconnector", "issuer: https://idp.test", []string{"--login-hint", "long-url"},
			[]string{"FAIL  LoginURL: ", "over the limit of 8192", "hint: the answer breaks the connector contract"}},
		{"testconnector", "issuer: https://idp.test", []string{"--login-hint", "javascript"},
			[]string{"FAIL  LoginURL: ", "not an absolute http(s) URL"}},
		{"testconnector", `{"hang_open": true}`, []string{"--call-timeout", "500ms"},
			[]string{"FAIL  Configure: ", "timed out in Configure", "hint: Configure must answer within --call-timeout (500ms)"}},
		{"testconnector", "issuer: https://idp.test", []string{"--login-hint", "exit"},
			[]string{"FAIL  LoginURL: ", "the plugin process exited during the call"}},
	} {
		out, err := checkPlugin(t, tc.plugin, tc.config, tc.args...)
		if !errors.Is(err, errCheckFailed) {
			t.Errorf("%s %v: err %v, want a failed check:\n%s", tc.plugin, tc.args, err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s %v: output lacks %q:\n%s", tc.plugin, tc.args, w, out)
			}
		}
	}
}

// A plugin in another language that serves plaintext gRPC fails the
// handshake on auto mTLS: the report says so and how to fix it.
func TestPluginCheckAutoMTLSHint(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "testdata", "node-connector", "connector.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "@grpc", "grpc-js")); err != nil {
		t.Skip("testdata/node-connector/node_modules is missing: run `npm ci --prefix testdata/node-connector`")
	}
	out, err := checkPlugin(t, script, "issuer: https://node-idp.test")
	if !errors.Is(err, errCheckFailed) || !strings.Contains(out, "FAIL  handshake: ") || !strings.Contains(out, "--auto-mtls=false") {
		t.Errorf("err %v, output:\n%s", err, out)
	}
	out, err = checkPlugin(t, script, "issuer: https://node-idp.test", "--auto-mtls=false")
	if err != nil || !strings.Contains(out, "All checks passed.") {
		t.Errorf("--auto-mtls=false: err %v, output:\n%s", err, out)
	}
}
