package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Actions limited by the Limiter.
const (
	ActionLogin    = "login"    // password attempts: the broker's login form and the account page
	ActionRegister = "register" // registrations and activation resends
	ActionReset    = "reset"    // password-reset requests
)

// Limit allows Max attempts per Window. Max 0 takes the default; a negative
// Max turns the limit off.
type Limit struct {
	Max    int
	Window time.Duration
}

// ActionLimits limits one action per account (e-mail address) and per client
// IP address (IPv6 by /64).
type ActionLimits struct {
	PerAccount Limit
	PerIP      Limit
}

// Limits are the brute-force limits of each action.
type Limits struct {
	Login    ActionLimits
	Register ActionLimits
	Reset    ActionLimits
}

// DefaultLimits are used for every Limit left zero.
var DefaultLimits = Limits{
	Login:    ActionLimits{PerAccount: Limit{10, 15 * time.Minute}, PerIP: Limit{100, 15 * time.Minute}},
	Register: ActionLimits{PerAccount: Limit{5, time.Hour}, PerIP: Limit{20, time.Hour}},
	Reset:    ActionLimits{PerAccount: Limit{5, time.Hour}, PerIP: Limit{20, time.Hour}},
}

func (l Limits) withDefaults() Limits {
	fill := func(l *Limit, d Limit) {
		if l.Max == 0 {
			l.Max = d.Max
		}
		if l.Window <= 0 {
			l.Window = d.Window
		}
	}
	fill(&l.Login.PerAccount, DefaultLimits.Login.PerAccount)
	fill(&l.Login.PerIP, DefaultLimits.Login.PerIP)
	fill(&l.Register.PerAccount, DefaultLimits.Register.PerAccount)
	fill(&l.Register.PerIP, DefaultLimits.Register.PerIP)
	fill(&l.Reset.PerAccount, DefaultLimits.Reset.PerAccount)
	fill(&l.Reset.PerIP, DefaultLimits.Reset.PerIP)
	return l
}

// Limiter counts attempts in fixed windows kept in storage, so that every
// replica sees the same counts.
type Limiter struct {
	store  *storage.Store
	limits Limits
	now    func() time.Time
}

// NewLimiter returns a limiter over store; zero limits take DefaultLimits.
func NewLimiter(store *storage.Store, limits Limits, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{store: store, limits: limits.withDefaults(), now: now}
}

func (l *Limiter) limitsFor(action string) (ActionLimits, error) {
	switch action {
	case ActionLogin:
		return l.limits.Login, nil
	case ActionRegister:
		return l.limits.Register, nil
	case ActionReset:
		return l.limits.Reset, nil
	}
	return ActionLimits{}, fmt.Errorf("rate limit: unknown action %q", action)
}

// Allow counts one attempt of action for account (an e-mail address; may be
// empty) from ip, and reports whether it is within the limits. When it is
// not, retryAfter says when the fuller of the two windows ends. Call it
// before doing the work (before verifying a password).
func (l *Limiter) Allow(ctx context.Context, action, account, ip string) (ok bool, retryAfter time.Duration, err error) {
	limits, err := l.limitsFor(action)
	if err != nil {
		return false, 0, err
	}
	now := l.now()
	ok = true
	check := func(key string, lim Limit) error {
		if lim.Max < 0 {
			return nil
		}
		count, start, err := l.store.HitRateCounter(ctx, key, lim.Window, now)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", action, err)
		}
		if count > lim.Max {
			ok = false
			retryAfter = max(retryAfter, start.Add(lim.Window).Sub(now))
		}
		return nil
	}
	if account = normalizeAccount(account); account != "" {
		if err := check(accountKey(action, account), limits.PerAccount); err != nil {
			return false, 0, err
		}
	}
	if ip = ipBucket(ip); ip != "" {
		if err := check(action+":ip:"+ip, limits.PerIP); err != nil {
			return false, 0, err
		}
	}
	if !ok && retryAfter < time.Second {
		retryAfter = time.Second
	}
	return ok, retryAfter, nil
}

// Succeeded clears the account's counter for action, e.g. after a correct
// password, so that a user's own earlier typos do not lock them out. The
// per-IP counter keeps counting.
func (l *Limiter) Succeeded(ctx context.Context, action, account string) error {
	if _, err := l.limitsFor(action); err != nil {
		return err
	}
	if account = normalizeAccount(account); account == "" {
		return nil
	}
	if err := l.store.ResetRateCounter(ctx, accountKey(action, account)); err != nil {
		return fmt.Errorf("rate limit %s: reset: %w", action, err)
	}
	return nil
}

func normalizeAccount(account string) string {
	return strings.ToLower(strings.TrimSpace(account))
}

// accountKey hashes the address so that counters hold no e-mail addresses.
func accountKey(action, account string) string {
	sum := sha256.Sum256([]byte(account))
	return action + ":acct:" + hex.EncodeToString(sum[:16])
}

// ipBucket maps an address to its counter: IPv4 addresses as they are,
// IPv6 addresses by their /64 (one host usually holds a whole /64).
func ipBucket(ip string) string {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return ""
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.WithZone("").Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}

// RemoteIP is the default client address: the host part of r.RemoteAddr.
// Behind a reverse proxy, configure Config.ClientIP instead.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// retryAfterSeconds is the Retry-After value: whole seconds, rounded up.
func retryAfterSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
