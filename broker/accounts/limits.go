package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
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

// Backoff is the growing delay between password attempts on one account.
// The account's first Free attempts are not delayed; after that, an
// attempt must come Base after the account's last one, twice as long
// after each further attempt, at most Max. A correct password clears the
// count, and it is forgotten Forget after the account's last attempt.
//
// The delay holds only for addresses that have tried the account and not
// signed in since: an address that has not failed on the account (the
// owner's, usually) is never delayed, so a stranger's guesses cannot lock
// the owner out. Free 0 takes the default; a negative Free turns the delay
// off.
type Backoff struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
}

// wait is how long an attempt must come after the account's last, when
// the account has had count attempts since its last success.
func (b Backoff) wait(count int) time.Duration {
	if count < b.Free {
		return 0
	}
	d := b.Base
	for i := b.Free; i < count && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// LoginLimits limit password attempts.
type LoginLimits struct {
	// PerAccountIP limits attempts on one account from one client address
	// (IPv6 by /64); over it, that address waits for the window to end.
	PerAccountIP Limit
	// PerIP limits attempts from one client address, whatever the account.
	PerIP Limit
	// AccountDelay slows down guessing on one account from any number of
	// addresses, without locking the owner out.
	AccountDelay Backoff
}

// Limits are the brute-force limits of each action.
type Limits struct {
	Login    LoginLimits
	Register ActionLimits
	Reset    ActionLimits
}

// DefaultLimits are used for every Limit left zero.
var DefaultLimits = Limits{
	Login: LoginLimits{
		PerAccountIP: Limit{10, 15 * time.Minute},
		PerIP:        Limit{100, 15 * time.Minute},
		AccountDelay: Backoff{Free: 5, Base: time.Second, Max: 5 * time.Minute, Forget: 24 * time.Hour},
	},
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
	fill(&l.Login.PerAccountIP, DefaultLimits.Login.PerAccountIP)
	fill(&l.Login.PerIP, DefaultLimits.Login.PerIP)
	fill(&l.Register.PerAccount, DefaultLimits.Register.PerAccount)
	fill(&l.Register.PerIP, DefaultLimits.Register.PerIP)
	fill(&l.Reset.PerAccount, DefaultLimits.Reset.PerAccount)
	fill(&l.Reset.PerIP, DefaultLimits.Reset.PerIP)
	b, d := &l.Login.AccountDelay, DefaultLimits.Login.AccountDelay
	if b.Free == 0 {
		b.Free = d.Free
	}
	if b.Base <= 0 {
		b.Base = d.Base
	}
	if b.Max <= 0 {
		b.Max = d.Max
	}
	b.Max = max(b.Max, b.Base)
	if b.Forget <= 0 {
		b.Forget = d.Forget
	}
	return l
}

// Limiter counts attempts in storage, so that every replica sees the same
// counts.
type Limiter struct {
	store  LimiterStore
	limits Limits
	now    func() time.Time
	log    *slog.Logger
}

// NewLimiter returns a limiter over store; zero limits take DefaultLimits.
// It logs a warning (with the account's user id, never its address) when
// a limit trips; log may be nil (slog.Default).
func NewLimiter(store LimiterStore, limits Limits, now func() time.Time, log *slog.Logger) *Limiter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Limiter{store: store, limits: limits.withDefaults(), now: now, log: log}
}

func (l *Limiter) limitsFor(action string) (ActionLimits, error) {
	switch action {
	case ActionLogin:
		return ActionLimits{PerIP: l.limits.Login.PerIP}, nil
	case ActionRegister:
		return l.limits.Register, nil
	case ActionReset:
		return l.limits.Reset, nil
	}
	return ActionLimits{}, fmt.Errorf("rate limit: unknown action %q", action)
}

// Allow counts one attempt of action for account (an e-mail address; may be
// empty) from ip, and reports whether it is within the limits. When it is
// not, retryAfter says when it may be tried again. Call it before doing the
// work (before verifying a password): a login attempt counts as failed
// until Succeeded says otherwise, so that concurrent guesses count too.
//
// Register and reset are limited per account and per IP in fixed windows.
// Login is limited per (account, IP) and per IP in fixed windows, and per
// account by a delay that grows with its attempts (Backoff) and holds
// only for addresses that have tried the account since their last
// success.
func (l *Limiter) Allow(ctx context.Context, action, account, ip string) (ok bool, retryAfter time.Duration, err error) {
	limits, err := l.limitsFor(action)
	if err != nil {
		return false, 0, err
	}
	now := l.now()
	account, ip = normalizeAccount(account), ipBucket(ip)
	ok = true
	check := func(key, name string, lim Limit) error {
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
			if count == lim.Max+1 { // log when it trips, not at every refusal
				l.warn(ctx, action, name, account, ip, start.Add(lim.Window).Sub(now))
			}
		}
		return nil
	}
	if ip != "" {
		if err := check(action+":ip:"+ip, "per_ip", limits.PerIP); err != nil {
			return false, 0, err
		}
	}
	if account != "" {
		if action == ActionLogin {
			if err := l.loginAccount(ctx, account, ip, now, &ok, &retryAfter, check); err != nil {
				return false, 0, err
			}
		} else if err := check(accountKey(action, account), "per_account", limits.PerAccount); err != nil {
			return false, 0, err
		}
	}
	if !ok && retryAfter < time.Second {
		retryAfter = time.Second
	}
	return ok, retryAfter, nil
}

// loginAccount applies the per-account limits of a login attempt.
func (l *Limiter) loginAccount(ctx context.Context, account, ip string, now time.Time, ok *bool, retryAfter *time.Duration,
	check func(key, name string, lim Limit) error) error {
	lim := l.limits.Login
	if ip != "" {
		if err := check(accountIPKey(ActionLogin, account, ip), "per_account_ip", lim.PerAccountIP); err != nil {
			return err
		}
	}
	if !*ok || lim.AccountDelay.Free < 0 {
		return nil
	}
	b := lim.AccountDelay
	// Has this address tried the account since its last success? Without
	// an address every attempt counts as one that has.
	tried := true
	if ip != "" {
		n, _, err := l.store.HitBackoffCounter(ctx, accountIPKey("login-seen", account, ip), now, b.Forget, nil)
		if err != nil {
			return fmt.Errorf("rate limit login: %w", err)
		}
		tried = n > 1
	}
	var wait func(int) time.Duration
	if tried {
		wait = b.wait
	}
	count, retry, err := l.store.HitBackoffCounter(ctx, accountKey("login-delay", account), now, b.Forget, wait)
	if err != nil {
		return fmt.Errorf("rate limit login: %w", err)
	}
	if retry > 0 {
		*ok, *retryAfter = false, retry
		return nil
	}
	// Log each step of the delay: at most one line per delay.
	if next := b.wait(count); next > 0 && b.wait(count-1) < b.Max {
		l.warn(ctx, ActionLogin, "account_delay", account, ip, next, "attempts", count)
	}
	return nil
}

// warn logs a limit that tripped, naming the account by its user id (when
// the address has an account) and by its counter's hash, never by address.
func (l *Limiter) warn(ctx context.Context, action, limit, account, ip string, retry time.Duration, extra ...any) {
	args := []any{"action", action, "limit", limit, "ip", ip, "retry_after", retry.Round(time.Second).String()}
	if account != "" {
		args = append(args, "account", accountHash(account))
		if u, err := l.store.GetUserByEmail(ctx, account); err == nil {
			args = append(args, "user", u.ID)
		}
	}
	l.log.WarnContext(ctx, "accounts: brute-force limit", append(args, extra...)...)
}

// Succeeded clears the account's login counts for the address that
// signed in (ip may be empty, e.g. after a password reset: then only the
// account's delay is cleared), so that a user's own earlier typos do not
// slow them down. The per-IP counter keeps counting, and other addresses
// that failed on the account stay delayed.
func (l *Limiter) Succeeded(ctx context.Context, action, account, ip string) error {
	if _, err := l.limitsFor(action); err != nil {
		return err
	}
	if account = normalizeAccount(account); account == "" {
		return nil
	}
	keys := []string{accountKey(action, account)}
	if action == ActionLogin {
		keys = []string{accountKey("login-delay", account)}
		if ip = ipBucket(ip); ip != "" {
			keys = append(keys, accountIPKey(ActionLogin, account, ip), accountIPKey("login-seen", account, ip))
		}
	}
	for _, key := range keys {
		if err := l.store.ResetRateCounter(ctx, key); err != nil {
			return fmt.Errorf("rate limit %s: reset: %w", action, err)
		}
	}
	return nil
}

func normalizeAccount(account string) string {
	return strings.ToLower(strings.TrimSpace(account))
}

// accountHash names an account (an e-mail address) in counters and logs
// without the address.
func accountHash(account string) string {
	sum := sha256.Sum256([]byte(account))
	return hex.EncodeToString(sum[:16])
}

// accountKey is the counter of an account, holding no e-mail address.
func accountKey(action, account string) string {
	return action + ":acct:" + accountHash(account)
}

// accountIPKey is the counter of an account at one client address.
func accountIPKey(action, account, ip string) string {
	return action + ":acct:" + accountHash(account) + ":ip:" + ip
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
