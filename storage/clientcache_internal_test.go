package storage

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestClientCache(t *testing.T) {
	loads := 0
	load := func(_ context.Context, id string) (*Client, error) {
		loads++
		if id == "unknown" {
			return nil, ErrNotFound
		}
		return &Client{ID: id}, nil
	}
	ctx := t.Context()

	c := newClientCache(time.Hour)
	for range 3 {
		if got, err := c.get(ctx, "a", load); err != nil || got.ID != "a" {
			t.Fatalf("get a: %v %v", got, err)
		}
	}
	if loads != 1 {
		t.Errorf("%d loads for one cached client, want 1", loads)
	}
	loads = 0
	for range 2 {
		if _, err := c.get(ctx, "unknown", load); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get unknown: %v", err)
		}
	}
	if loads != 2 {
		t.Errorf("%d loads for an unknown client asked twice, want 2 (misses are not cached)", loads)
	}

	expired := newClientCache(0)
	loads = 0
	expired.get(ctx, "a", load)
	expired.get(ctx, "a", load)
	if loads != 2 {
		t.Errorf("%d loads after expiry, want 2", loads)
	}
}
