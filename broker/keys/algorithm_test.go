package keys

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestAlgorithmChange backs docs/keys.md: changing keys.algorithm touches
// no existing key; a warning is logged at start while the signing key's
// algorithm differs from the configured one; new keys get the new
// algorithm, which signs from the second rotation on.
func TestAlgorithmChange(t *testing.T) {
	c := newClock()
	store := newMemStore()
	old := mustNew(t, store, testOptions(c)) // ES256
	oldCurrent := old.SigningKey().KeyID

	var logs bytes.Buffer
	opts := testOptions(c)
	opts.Algorithm = RS256
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := mustNew(t, store, opts)
	if m.SigningKey().KeyID != oldCurrent || m.SigningKey().Algorithm != ES256 {
		t.Fatalf("after the change the signing key is %s (%s), want the old %s (ES256)", m.SigningKey().KeyID, m.SigningKey().Algorithm, oldCurrent)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "another algorithm than configured") {
		t.Errorf("no warning about the algorithm at start: %s", logs.String())
	}

	ctx := context.Background()
	c.Advance(24 * time.Hour)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if alg := m.SigningKey().Algorithm; alg != ES256 {
		t.Errorf("after the first rotation the signing key is %s, want the old next key (ES256)", alg)
	}
	c.Advance(24 * time.Hour)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if alg := m.SigningKey().Algorithm; alg != RS256 {
		t.Errorf("after the second rotation the signing key is %s, want RS256", alg)
	}
}

// TestRotatingTwiceWarns backs docs/keys.md: a rotation that promotes a
// next key published only moments ago logs a warning (relying parties
// with a cached JWKS must refetch it); one after a whole period does not.
func TestRotatingTwiceWarns(t *testing.T) {
	c := newClock()
	var logs bytes.Buffer
	opts := testOptions(c)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := mustNew(t, newMemStore(), opts)
	ctx := context.Background()
	c.Advance(opts.RotationPeriod)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "recently published") {
		t.Errorf("a rotation after a whole period warned: %s", logs.String())
	}
	c.Advance(time.Second)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "recently published") {
		t.Errorf("rotating twice in a row did not warn: %s", logs.String())
	}
}
