package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/internal/testenv"
)

// buildTestConnector builds the plugins package's test connector into a
// directory of the test's own, so the test can remove it.
func buildTestConnector(t *testing.T) string {
	t.Helper()
	return testenv.CopyBinary(t, "./plugins/internal/testconnector")
}

// pluginPIDs are the processes running the executable at path.
func pluginPIDs(t *testing.T, path string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			pids = append(pids, pid)
		}
	}
	return pids
}

type readyBody struct {
	Status  string            `json:"status"`
	Checks  map[string]string `json:"checks"`
	Failing []string          `json:"failing"`
}

func getReady(t *testing.T, url string) (int, readyBody) {
	t.Helper()
	code, raw := getStatus(t, url)
	var b readyBody
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		t.Fatalf("/readyz body %q: %v", raw, err)
	}
	return code, b
}

// TestReadyzNamesEachConnector backs docs/ops.md: /readyz has one check
// per connector ("connector <id>"); a connector whose plugin is gone (its
// process killed, its binary removed, so the relaunch fails) makes the
// broker degraded, not unready: 200, the connector named as failing, while
// local login, /token and the JWKS still work. With
// federation.require_connectors it is 503.
func TestReadyzNamesEachConnector(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a plugin")
	}
	t.Setenv("BRIDGEKEEPER_SYSTEM_SECRET", "")
	for _, require := range []bool{false, true} {
		t.Run("require_connectors="+strconv.FormatBool(require), func(t *testing.T) {
			bin := buildTestConnector(t)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.yaml")
			yaml := "connectors:\n" +
				"  - id: good\n    path: " + bin + "\n    config: {issuer: https://idp.test}\n" +
				"  - id: flaky\n    path: " + bin + "-flaky\n    config: {issuer: https://idp.test}\n"
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin+"-flaky", raw, 0o755); err != nil {
				t.Fatal(err)
			}
			addr := testenv.FreeAddr(t)
			issuer := "http://" + addr
			args := []string{"--config", cfg, "--listen", addr, "--issuer", issuer,
				"--dsn", "sqlite:" + filepath.Join(dir, "bk.db")}
			if require {
				args = append(args, "--federation.require-connectors")
			}
			serveInProcess(t, args...)

			code, body := getReady(t, issuer+"/readyz")
			if code != http.StatusOK || body.Status != "ok" || body.Checks["connector good"] != "ok" || body.Checks["connector flaky"] != "ok" {
				t.Fatalf("all well: /readyz %d %+v; want 200 with one ok check per connector", code, body)
			}

			// The flaky connector's binary goes away and its process dies:
			// the health check's relaunch fails.
			pids := pluginPIDs(t, bin+"-flaky")
			if len(pids) != 1 {
				t.Fatalf("flaky plugin processes: %v", pids)
			}
			if err := os.Remove(bin + "-flaky"); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)

			code, body = getReady(t, issuer+"/readyz")
			wantCode, wantStatus := http.StatusOK, "degraded"
			if require {
				wantCode, wantStatus = http.StatusServiceUnavailable, "unavailable"
			}
			if code != wantCode || body.Status != wantStatus || body.Checks["connector flaky"] != "failing" ||
				body.Checks["connector good"] != "ok" || strings.Join(body.Failing, ",") != "connector flaky" {
				t.Errorf("flaky connector down: /readyz %d %+v; want %d %s naming connector flaky", code, body, wantCode, wantStatus)
			}
			// What does not need the connector still works.
			for _, path := range []string{"/.well-known/jwks.json", "/healthz"} {
				if code, _ := getStatus(t, issuer+path); code != http.StatusOK {
					t.Errorf("%s: %d", path, code)
				}
			}
		})
	}
}
