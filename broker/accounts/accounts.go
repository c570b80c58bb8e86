// Package accounts serves the broker's local-account pages: registration
// with e-mail activation, password reset, and the account page (change the
// password or the e-mail address). It also holds the brute-force Limiter the
// broker's login form uses, and LoginAllowed, which says whether a local user
// may log in.
//
// Every page is a plain HTML form (no JavaScript needed), protected against
// cross-site requests by http.CrossOriginProtection and a double-submit
// token. The answers that could tell whether an address has an account
// (registration, resend, reset) are the same in content, status and time:
// e-mail goes out in the background and those answers wait for a fixed floor.
package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/policy"
	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/broker/passkey"
	"github.com/bridgekeeper/bridgekeeper/internal/cookie"
	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Config configures the Service.
type Config struct {
	Store  Store        // required; *storage.Store fits
	Logger *slog.Logger // slog.Default() when nil
	// Issuer is the broker's absolute base URL; e-mail links are Issuer +
	// path, and page links use its path as a prefix.
	Issuer string
	// Mailer sends the e-mails; a mail.Log (links in the log) when nil.
	Mailer mail.Mailer

	// AllowRegistration opens /register. Activation, reset and the account
	// page work either way.
	AllowRegistration bool
	// RequireActivation keeps new accounts inactive until the link in the
	// activation e-mail is followed; LoginAllowed refuses inactive users.
	RequireActivation bool

	ActivationTTL  time.Duration // lifetime of activation links; default 48h
	ResetTTL       time.Duration // lifetime of password-reset links; default 1h
	EmailChangeTTL time.Duration // lifetime of e-mail-change links; default 24h

	Limits Limits // zero fields take DefaultLimits
	Theme  Theme

	// AllowedReturnURL reports whether ?return_to= may be linked to (an
	// application URL: a registered redirect URI or origin). Without it no
	// return link is shown.
	AllowedReturnURL func(string) bool
	// AccessTokenLifetime is the broker's access-token lifetime
	// (tokens.access_token_lifetime; default 15m): the pages that sign a
	// user out everywhere say that an API verifying access tokens offline
	// may accept one for that long.
	AccessTokenLifetime time.Duration
	// SignInPath is the broker's login page, continued with ?login=ID when
	// a visitor came from it; default "/login".
	SignInPath string
	// ClientIP returns the client's address for the per-IP limits; RemoteIP
	// by default. Behind a proxy, return the address it forwarded.
	ClientIP func(r *http.Request) string

	// MinResponseTime is the time every answer to a registration, resend
	// or reset request takes at least, whether or not the address has an
	// account; default 400ms. It must exceed the longest time the work
	// behind those answers takes (a password hash and a few writes).
	MinResponseTime time.Duration
	// Now is the clock for links and limits (tests); time.Now by default.
	Now func() time.Time

	// Factors, when set, adds two-step verification to the account page
	// (an authenticator app, recovery codes); its Notify is set to e-mail
	// the owner of every enrolment and removal.
	Factors *mfa.Service
	// MFAResetByEmail lets a password reset by e-mail also remove the
	// account's second factors (accounts.mfa_reset_by_email; default off:
	// an operator's bridgekeeper user reset-mfa does).
	MFAResetByEmail bool
	// Passkeys, when set, adds passkeys to the account page (add one
	// after the password, name it, list them with their last use, remove
	// one); its Notify is set to e-mail the owner of every change.
	Passkeys *passkey.Service
}

// Broker is what the pages use of the broker they are served beside
// (broker.Server fits).
type Broker interface {
	// CurrentUser returns the user of the broker session of r, or nil (and
	// no error) when there is none.
	CurrentUser(r *http.Request) (*storage.User, error)
	// SignInURL is a link that signs the visitor in to the broker and
	// comes back to returnPath: the account page offers it to a visitor
	// who is not signed in.
	SignInURL(returnPath string) string
}

// Theme styles the pages and e-mails: the one theme of every page (the
// broker's and the federation's too; see internal/pagekit). Its
// PrimaryColor is #rgb, #rrggbb or a colour name, else New fails; its
// TemplateDir holds templates that replace the embedded ones of the same
// name (layout.html, register.html, …, mail/activate.txt, …).
type Theme = pagekit.Theme

// Errors of LoginAllowed; their messages can be shown to the user.
var (
	ErrNotActivated = errors.New("this account is not activated yet: follow the link in the activation e-mail, or ask for a new one")
	ErrDisabled     = errors.New("this account is disabled")
	ErrNoPassword   = errors.New("this account has no password: sign in the way you signed up, or set a password with \"Forgot password\"")
)

// Token kinds (storage.ActionToken.Kind).
const (
	kindActivate    = "activate"
	kindReset       = "reset"
	kindEmailChange = "email_change"
)

// Service serves the account pages.
type Service struct {
	cfg      Config
	store    Store
	log      *slog.Logger
	mailer   mail.Mailer
	limiter  *Limiter
	policy   *policy.Checker
	tmpl     *templates
	issuer   string // without a trailing slash
	base     string // the issuer's path, without a trailing slash
	cookies  cookie.Policy
	now      func() time.Time
	clientIP func(r *http.Request) string
	cop      *http.CrossOriginProtection
	mailWG   sync.WaitGroup
	broker   Broker // set by Routes
}

// New checks the configuration, fills in defaults and parses the templates.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("accounts: a store is required")
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil || (issuer.Scheme != "http" && issuer.Scheme != "https") || issuer.Host == "" {
		return nil, fmt.Errorf("accounts: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Mailer == nil {
		cfg.Mailer = mail.Log{Logger: cfg.Logger}
	}
	if cfg.ActivationTTL <= 0 {
		cfg.ActivationTTL = 48 * time.Hour
	}
	if cfg.ResetTTL <= 0 {
		cfg.ResetTTL = time.Hour
	}
	if cfg.EmailChangeTTL <= 0 {
		cfg.EmailChangeTTL = 24 * time.Hour
	}
	if cfg.AccessTokenLifetime <= 0 {
		cfg.AccessTokenLifetime = 15 * time.Minute
	}
	if cfg.MinResponseTime <= 0 {
		cfg.MinResponseTime = 400 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SignInPath == "" {
		cfg.SignInPath = "/login"
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = RemoteIP
	}
	tmpl, err := loadTemplates(cfg.Theme, issuer.Scheme == "https", cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	cfg.Theme = tmpl.pages.Theme() // its defaults filled in, for the e-mails and the password policy
	s := &Service{
		cfg:      cfg,
		store:    cfg.Store,
		log:      cfg.Logger,
		mailer:   cfg.Mailer,
		limiter:  NewLimiter(cfg.Store, cfg.Limits, cfg.Now, cfg.Logger),
		policy:   policy.New(),
		tmpl:     tmpl,
		issuer:   strings.TrimSuffix(issuer.String(), "/"),
		base:     strings.TrimSuffix(issuer.EscapedPath(), "/"),
		cookies:  cookie.For(issuer.String()),
		now:      cfg.Now,
		clientIP: cfg.ClientIP,
		cop:      http.NewCrossOriginProtection(),
	}
	// Behind a proxy that rewrites Host, the issuer's own origin still counts
	// as same-origin.
	if err := s.cop.AddTrustedOrigin(issuer.Scheme + "://" + issuer.Host); err != nil {
		return nil, fmt.Errorf("accounts: issuer origin: %w", err)
	}
	s.cop.SetDenyHandler(http.HandlerFunc(s.crossOriginDenied))
	if cfg.Factors != nil {
		cfg.Factors.SetNotify(s.NotifyFactor)
	}
	if cfg.Passkeys != nil {
		cfg.Passkeys.SetNotify(s.NotifyFactor)
	}
	return s, nil
}

// Routes adds the pages to r, which must serve the issuer's path (a page at
// /register is linked as Issuer + "/register"), with the broker b they are
// served beside. Call it once, before serving r (broker.Config.Mounts does).
// Without a broker (nil), /account always asks the user to sign in to the
// application first.
func (s *Service) Routes(r *mux.Router, b Broker) {
	s.broker = b
	get := func(path string, h http.HandlerFunc) {
		r.Handle(path, s.protect(h, form{})).Methods(http.MethodGet, http.MethodHead)
	}
	post := func(path string, h http.HandlerFunc, f form) {
		r.Handle(path, s.protect(h, f)).Methods(http.MethodPost)
	}
	get("/register", s.registerForm)
	post("/register", s.register, form{"register", "Create your account"})
	get("/register/resend", s.resendForm)
	post("/register/resend", s.resend, form{"resend", "Send a new activation link"})
	get("/activate", s.activateForm)
	post("/activate", s.activate, form{"activate", "Activate your account"})
	get("/reset", s.resetForm)
	post("/reset", s.reset, form{"reset", "Reset your password"})
	get("/reset/confirm", s.resetConfirmForm)
	post("/reset/confirm", s.resetConfirm, form{"reset_confirm", "Choose a new password"})
	get("/account", s.account)
	post("/account/password", s.changePassword, form{"account", "Your account"})
	post("/account/email", s.changeEmail, form{"account", "Your account"})
	get("/account/email/confirm", s.emailConfirmForm)
	post("/account/email/confirm", s.emailConfirm, form{"email_confirm", "Sign in to confirm your new address"})
	s.factorRoutes(post)
	s.passkeyRoutes(post)
}

// Limiter returns the brute-force limiter; the broker's login form calls
// Allow(ctx, ActionLogin, email, ip) before checking a password and
// Succeeded(ctx, ActionLogin, email) after a correct one.
func (s *Service) Limiter() *Limiter { return s.limiter }

// LoginAllowed reports whether u may log in with a password: nil, or
// ErrDisabled, ErrNotActivated (when activation is required) or
// ErrNoPassword. Check the password first, so that these answers go only to
// someone who knows it.
func (s *Service) LoginAllowed(u *storage.User) error {
	switch {
	case u.Disabled:
		return ErrDisabled
	case s.cfg.RequireActivation && !u.Active:
		return ErrNotActivated
	case u.PasswordHash == "":
		return ErrNoPassword
	}
	return nil
}

// RegisterURL, ResendURL and ResetURL are the page links for the login form,
// carrying returnTo (kept only when AllowedReturnURL accepts it).
// The pages also take ?login=ID, the broker's pending-login id (LoginLink
// WithLogin appends it), and then offer to continue signing in.
func (s *Service) RegisterURL(returnTo string) string {
	return s.pageURL("/register", s.backFrom(returnTo, ""))
}

// ResendURL links to the form that sends a new activation e-mail.
func (s *Service) ResendURL(returnTo string) string {
	return s.pageURL("/register/resend", s.backFrom(returnTo, ""))
}

// ResetURL links to the password-reset request form.
func (s *Service) ResetURL(returnTo string) string {
	return s.pageURL("/reset", s.backFrom(returnTo, ""))
}

// AccountURL links to the account page.
func (s *Service) AccountURL(returnTo string) string {
	return s.pageURL("/account", s.backFrom(returnTo, ""))
}

// RegistrationOpen reports whether /register accepts new accounts.
func (s *Service) RegistrationOpen() bool { return s.cfg.AllowRegistration }

// back is the way back a visitor brought along: an application URL to
// return to and the broker's pending login to continue.
type back struct {
	ReturnTo string // accepted by AllowedReturnURL
	Login    string // a pending-login id (opaque; the broker checks it)
}

func (b back) values() url.Values {
	q := url.Values{}
	if b.ReturnTo != "" {
		q.Set("return_to", b.ReturnTo)
	}
	if b.Login != "" {
		q.Set("login", b.Login)
	}
	return q
}

var loginIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)

// backFrom checks what a request brought along.
func (s *Service) backFrom(returnTo, login string) back {
	b := back{ReturnTo: s.returnTo(returnTo)}
	if loginIDRE.MatchString(login) {
		b.Login = login
	}
	return b
}

func (s *Service) backOf(r *http.Request) back {
	return s.backFrom(r.FormValue("return_to"), r.FormValue("login"))
}

// pageURL is the link to one of the pages, carrying b.
func (s *Service) pageURL(path string, b back) string {
	u := s.base + path
	if q := b.values(); len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// signInURL continues the broker's pending login.
func (s *Service) signInURL(b back) string {
	if b.Login == "" {
		return ""
	}
	return s.base + s.cfg.SignInPath + "?" + url.Values{"login": {b.Login}}.Encode()
}

// Close waits for the e-mails still being sent.
func (s *Service) Close() error {
	s.mailWG.Wait()
	return nil
}

// returnTo keeps a return link only when the application allows it.
func (s *Service) returnTo(raw string) string {
	if raw == "" || len(raw) > 2048 || s.cfg.AllowedReturnURL == nil || !s.cfg.AllowedReturnURL(raw) {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return raw
}

// NewUserID returns a random user id in the broker's format.
func NewUserID() string { return "u_" + strings.ToLower(rand.Text()) }

// waitFloor sleeps until MinResponseTime has passed since start (or the
// client has gone).
func (s *Service) waitFloor(ctx context.Context, start time.Time) {
	rest := s.cfg.MinResponseTime - time.Since(start)
	if rest <= 0 {
		return
	}
	t := time.NewTimer(rest)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
