package plugins

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/plugins/internal/wire"
)

// swapSetup prepares a plugin directory: good, a copy of the test
// connector, and other, a program that leaves a mark and then runs the
// real plugin (so a launch of it would even succeed). ran reports whether
// other ran.
func swapSetup(t *testing.T) (dir, good, other, sum string, ran func() bool) {
	t.Helper()
	dir = t.TempDir()
	good = filepath.Join(dir, "good")
	copyFile(t, testConnector(t), good)
	marker := filepath.Join(dir, "other-ran")
	other = filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("#!/bin/sh\necho ran >> "+marker+"\nexec "+good+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, good, other, sha256File(t, good), func() bool {
		_, err := os.Stat(marker)
		return err == nil
	}
}

// replace puts a new link to src at path in one rename.
func replace(t *testing.T, src, path string) {
	t.Helper()
	tmp := path + ".next"
	if err := os.Link(src, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestChecksumSwappedAfterCheck swaps the plugin file for another program
// right after the host checked its SHA-256 and before it runs it: the
// checked binary runs, not the other program (the host executes the very
// file it hashed).
func TestChecksumSwappedAfterCheck(t *testing.T) {
	ctx := testContext(t)
	dir, good, other, sum, otherRan := swapSetup(t)
	path := filepath.Join(dir, "connector")
	replace(t, good, path)
	swaps := 0
	p, sink := launchTest(t, func(c *Config) {
		c.Path, c.SHA256 = path, sum
		c.afterCheck = func() { swaps++; replace(t, other, path) }
	})
	if swaps != 1 || otherRan() {
		t.Fatalf("swaps %d; the swapped-in program ran: %v", swaps, otherRan())
	}
	if p.Info().Name == "" || p.Info().SDK != wire.SDKName {
		t.Errorf("Info() = %+v, want the test connector's", p.Info())
	}
	// Each relaunch checks again: the file at the path is now the other
	// program, which is refused.
	replace(t, other, path)
	killFirst(ctx, t, p, sink)
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); !errors.Is(err, ErrChecksumMismatch) {
		t.Errorf("relaunch with the other program in place: %v, want ErrChecksumMismatch", err)
	}
	if otherRan() {
		t.Error("the other program ran")
	}
}

// TestChecksumFIFOSwap plays the swap deterministically: the plugin's path
// is a named pipe that feeds the checked binary's bytes to whoever hashes
// it, and is renamed over by the other program before the hash ends. The
// launch must be refused (a plugin is a regular file) and the other
// program must not run.
func TestChecksumFIFOSwap(t *testing.T) {
	ctx := testContext(t)
	dir, good, other, sum, otherRan := swapSetup(t)
	path := filepath.Join(dir, "connector")
	if err := syscall.Mkfifo(path, 0o700); err != nil {
		t.Fatal(err)
	}
	fed := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0) // waits for a reader
		if err != nil {
			fed <- err
			return
		}
		defer w.Close()
		f, err := os.Open(good)
		if err != nil {
			fed <- err
			return
		}
		defer f.Close()
		if _, err := io.Copy(w, f); err != nil {
			fed <- err // the reader stopped reading: nothing to swap
			return
		}
		// Swap before the reader sees the end of the file.
		tmp := path + ".next"
		if err := os.Link(other, tmp); err != nil {
			fed <- err
			return
		}
		fed <- os.Rename(tmp, path)
	}()
	p, err := Launch(ctx, Config{ID: "test", Path: path, SHA256: sum, Config: []byte(`{"issuer":"https://idp.test"}`)}, nil)
	if err == nil {
		_ = p.Close()
	}
	// Release the writer, which may not even have reached its open yet on
	// a busy machine: open the pipe and drain it (a read without a writer
	// ends at once) until the writer reports.
	var werr error
	for done := false; !done; {
		r, rerr := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if rerr == nil {
			_, _ = io.Copy(io.Discard, r)
		}
		select {
		case werr = <-fed:
			done = true
		case <-time.After(20 * time.Millisecond):
		}
		if rerr == nil {
			r.Close()
		}
	}
	t.Logf("the pipe's writer: %v", werr)
	if otherRan() {
		t.Fatalf("the program swapped in after the check ran (launch error: %v)", err)
	}
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("launch from a named pipe: %v, want a refusal", err)
	}
}

// TestChecksummedScriptWarns backs docs/plugins.md ("The checked binary"):
// a checked plugin that is a #! script is run (its interpreter reads it
// by its path), and every launch logs a warning saying the check does not
// bind it; a checked binary logs none.
func TestChecksummedScriptWarns(t *testing.T) {
	ctx := testContext(t)
	isWarning := func(r logRecord) bool {
		return r.Level == slog.LevelWarn && strings.Contains(r.Message, "connector plugin is a script")
	}
	wrapper := filepath.Join(t.TempDir(), "wrapper")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+testConnector(t)+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, sink := launchTest(t, func(c *Config) { c.Path, c.SHA256 = wrapper, sha256File(t, wrapper) })
	if _, err := p.Connector().LoginURL(ctx, connectors.LoginRequest{State: "s"}); err != nil {
		t.Fatalf("LoginURL through the checked script: %v", err)
	}
	if _, ok, _ := sink.find(isWarning); !ok {
		t.Error("no warning that the checked plugin is a script")
	}
	_, sink = launchTest(t, func(c *Config) { c.SHA256 = sha256File(t, testConnector(t)) })
	if _, ok, _ := sink.find(isWarning); ok {
		t.Error("a checked binary was warned about as a script")
	}
}
