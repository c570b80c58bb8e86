package storagetest

import "sync"

// Meeting makes concurrent requests interleave the worst way every run: a
// caller of Arrive waits until n callers have arrived or left (Leave, a
// request that finished without arriving); from then on nobody waits.
// A test wraps the store method that reads before a write (a check then
// an insert) with Arrive, and each of its n requests calls Leave when it
// is answered.
type Meeting struct {
	mu               sync.Mutex
	cond             *sync.Cond
	n, arrived, left int
}

// NewMeeting returns a meeting of n.
func NewMeeting(n int) *Meeting {
	m := &Meeting{n: n}
	m.cond = sync.NewCond(&m.mu)
	return m
}

// Arrive waits for the others.
func (m *Meeting) Arrive() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.arrived++
	m.cond.Broadcast()
	for m.arrived+m.left < m.n {
		m.cond.Wait()
	}
}

// Leave tells the waiting that one request is done.
func (m *Meeting) Leave() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.left++
	m.cond.Broadcast()
}
