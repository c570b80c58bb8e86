package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// TestBackoffCounterWithoutWaitNeverRefuses: an attempt whose delay is
// zero is counted, even when a concurrent attempt (another request or
// replica, whose clock read came a moment later) wrote the counter with a
// later time first. Two users' simultaneous correct logins from one
// address were refused (429) by this before.
func TestBackoffCounterWithoutWaitNeverRefuses(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s, _ := b.Open(t)
			ctx := context.Background()
			now := time.Now()
			noWait := func(int) time.Duration { return 0 }
			if n, retry, err := s.HitBackoffCounter(ctx, "k", now.Add(time.Millisecond), time.Hour, noWait); err != nil || n != 1 || retry != 0 {
				t.Fatalf("first attempt: %d, %v, %v", n, retry, err)
			}
			// The second attempt's clock read came first.
			n, retry, err := s.HitBackoffCounter(ctx, "k", now, time.Hour, noWait)
			if err != nil || n != 2 || retry != 0 {
				t.Fatalf("an attempt without a delay, read a moment earlier: %d, retry %v, %v; want counted", n, retry, err)
			}
			// A real delay still holds.
			oneSecond := func(int) time.Duration { return time.Second }
			if _, retry, err := s.HitBackoffCounter(ctx, "k", now.Add(10*time.Millisecond), time.Hour, oneSecond); err != nil || retry <= 0 {
				t.Fatalf("an attempt within a 1 s delay: retry %v, %v; want refused", retry, err)
			}
		})
	}
}
