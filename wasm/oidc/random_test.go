package oidc

import (
	"context"
	"runtime"
	"testing"
)

// Without Deps.Random the host build uses crypto/rand; the js/wasm build
// refuses to start rather than link it.
func TestNewWithoutRandom(t *testing.T) {
	e := newEnv(t, "RS256")
	deps := e.deps()
	deps.Random = nil
	c, err := New(e.config(), deps)
	if runtime.GOOS == "js" {
		if ErrorCode(err) != CodeConfig {
			t.Fatalf("js: New without Random: %v, want %s", err, CodeConfig)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.AuthorizeURL(context.Background(), AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.AuthorizeURL(context.Background(), AuthOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two authorize URLs are equal: the random source gives nothing")
	}
}
