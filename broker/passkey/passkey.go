// Package passkey holds the passkeys of local accounts: WebAuthn
// discoverable credentials with user verification, registered on the
// account page and used to sign in without a password. All WebAuthn work
// (options, client data, authenticator data, CBOR, COSE keys, signatures)
// is github.com/go-webauthn/webauthn's; this package stores what it
// returns.
//
// A passkey is a storage.SecondFactor of kind storage.FactorPasskey: its
// credential record (the library's Credential, JSON) in PublicData, its
// credential id in CredentialID (unique), its sign counter in Counter.
// The server side of a ceremony (the challenge) is a
// storage.WebAuthnCeremony under the hash of a random handle the page
// holds, bound to the browser by a cookie, taken once, expiring with the
// ceremony's timeout.
package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/bridgekeeper/bridgekeeper/internal/cookie"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Purposes of a ceremony.
const (
	PurposeRegister = "register"
	PurposeLogin    = "login"
	// PurposeReauth: a signed-in user proves a passkey of theirs again
	// before a change of their second factors (the account pages); the
	// ceremony's purpose is PurposeReauth + ":" + the change's action.
	PurposeReauth = "reauth"
)

// Events of Config.Notify (the framework's factor notices).
const (
	EventAdded   = "passkey_added"
	EventRemoved = "passkey_removed"
)

// bindingCookie ties a ceremony to the browser that began it.
const bindingCookie = "bk_webauthn"

// DefaultTimeout is how long a ceremony may take.
const DefaultTimeout = 5 * time.Minute

// MaxNameLen is the longest passkey name kept (runes).
const MaxNameLen = 64

// Errors of the Finish methods; each says what the user is told.
var (
	// ErrExpired: no ceremony under that handle for this browser
	// (expired, used already, begun in another browser, or none).
	ErrExpired = errors.New("passkey: the passkey request expired or was used already")
	// ErrInvalid: the browser's answer is malformed or does not verify
	// (challenge, origin, RP ID, signature, user verification).
	ErrInvalid = errors.New("passkey: the passkey's answer could not be verified")
	// ErrUnknown: no account has this passkey (removed, or never here).
	ErrUnknown = errors.New("passkey: this passkey is not registered here")
	// ErrCounter: the sign counter did not move forward (a cloned
	// authenticator, or an assertion used twice); refused and logged.
	ErrCounter = errors.New("passkey: the passkey's sign counter went backwards")
	// ErrDuplicate: the credential is registered already.
	ErrDuplicate = errors.New("passkey: this passkey is registered already")
)

// Config configures a Service.
type Config struct {
	Store *storage.Store // required
	// Issuer is the broker's issuer URL: the RP ID defaults to its host
	// name and the allowed origins to its origin.
	Issuer string
	// RPID, when set, replaces the issuer's host name (a broker behind
	// another host name: the host the browser sees, or a registrable
	// suffix of it).
	RPID string
	// Origins, when set, replace the issuer's origin as the origins
	// WebAuthn answers may come from (scheme://host[:port]).
	Origins     []string
	DisplayName string        // the RP name authenticators show (ui.product_name)
	Timeout     time.Duration // DefaultTimeout when zero
	Logger      *slog.Logger
	// Notify, when set, is told of every registration and removal
	// (EventAdded, EventRemoved): the account pages e-mail the owner.
	Notify func(ctx context.Context, userID, event string)
}

// Service registers passkeys and signs users in with them.
type Service struct {
	wa      *webauthn.WebAuthn
	store   *storage.Store
	cookies cookie.Policy
	path    string // the cookie's path (the issuer's)
	timeout time.Duration
	log     *slog.Logger
	notify  func(ctx context.Context, userID, event string)
	script  string // absolute URL of the page script
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("passkey: a store is required")
	}
	iss, err := url.Parse(strings.TrimRight(cfg.Issuer, "/"))
	if err != nil || iss.Host == "" || (iss.Scheme != "http" && iss.Scheme != "https") {
		return nil, fmt.Errorf("passkey: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	if cfg.RPID == "" {
		cfg.RPID = iss.Hostname()
	}
	if len(cfg.Origins) == 0 {
		cfg.Origins = []string{iss.Scheme + "://" + iss.Host}
	}
	for _, o := range cfg.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("passkey: origin %q must be scheme://host[:port]", o)
		}
		if h := u.Hostname(); h != cfg.RPID && !strings.HasSuffix(h, "."+cfg.RPID) {
			return nil, fmt.Errorf("passkey: origin %q is not within the RP ID %q", o, cfg.RPID)
		}
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = "Bridgekeeper"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tc := webauthn.TimeoutConfig{Enforce: true, Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: cfg.DisplayName,
		RPOrigins:     cfg.Origins,
		Timeouts:      webauthn.TimeoutsConfig{Login: tc, Registration: tc},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	path := iss.Path
	if path == "" {
		path = "/"
	}
	return &Service{
		wa: wa, store: cfg.Store, cookies: cookie.For(cfg.Issuer), path: path, timeout: cfg.Timeout,
		log: cfg.Logger, notify: cfg.Notify, script: strings.TrimRight(iss.String(), "/") + ScriptPath,
	}, nil
}

// SetNotify sets the notification hook (the account pages are built after
// the broker that needs the Service).
func (s *Service) SetNotify(n func(ctx context.Context, userID, event string)) { s.notify = n }

// RPID is the relying-party id in use.
func (s *Service) RPID() string { return s.wa.Config.RPID }

// Ceremony is what a page needs to run a ceremony: the handle to post
// back and the options for navigator.credentials (JSON, the library's
// CredentialCreation or CredentialAssertion).
type Ceremony struct {
	Handle  string
	Options string
}

// user is a storage.User as the library sees it: the user handle is the
// user id (random, no personal data).
type user struct {
	u     *storage.User
	creds []webauthn.Credential
}

func (w *user) WebAuthnID() []byte { return []byte(w.u.ID) }
func (w *user) WebAuthnName() string {
	if w.u.Email != "" {
		return w.u.Email
	}
	return w.u.ID
}
func (w *user) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.WebAuthnName()
}
func (w *user) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// List returns the user's passkeys, oldest first.
func (s *Service) List(ctx context.Context, userID string) ([]storage.SecondFactor, error) {
	all, err := s.store.ListSecondFactors(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	var out []storage.SecondFactor
	for _, f := range all {
		if f.Kind == storage.FactorPasskey && f.Confirmed {
			out = append(out, f)
		}
	}
	return out, nil
}

// Synced reports whether the passkey f is backed up (its provider syncs
// it between devices: the backup state flag of its last use).
func Synced(f storage.SecondFactor) bool {
	var c webauthn.Credential
	return json.Unmarshal(f.PublicData, &c) == nil && c.Flags.BackupState
}

// BeginRegistration starts registering a passkey for u: a discoverable
// credential with user verification, none of u's registered ones again.
func (s *Service) BeginRegistration(ctx context.Context, w http.ResponseWriter, r *http.Request, u *storage.User) (*Ceremony, error) {
	have, err := s.List(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, f := range have {
		if c, err := credentialOf(f); err == nil {
			exclude = append(exclude, c.Descriptor())
		}
	}
	rk := true
	creation, sd, err := s.wa.BeginRegistration(&user{u: u},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: &rk,
			UserVerification:   protocol.VerificationRequired,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude),
	)
	if err != nil {
		return nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	return s.put(ctx, w, r, PurposeRegister, u.ID, sd, creation)
}

// FinishRegistration verifies the browser's answer (JSON of the
// PublicKeyCredential) to the registration ceremony handle of u and
// stores the passkey under name. Errors: ErrExpired, ErrInvalid,
// ErrDuplicate, or the store's.
func (s *Service) FinishRegistration(ctx context.Context, r *http.Request, u *storage.User, handle, name, response string) (*storage.SecondFactor, error) {
	c, err := s.take(ctx, r, handle, PurposeRegister)
	if err != nil {
		return nil, err
	}
	if c.UserID != u.ID {
		return nil, ErrExpired
	}
	sd, err := sessionOf(c)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(response))
	if err != nil {
		return nil, invalid(err)
	}
	cred, err := s.wa.CreateCredential(&user{u: u}, *sd, parsed)
	if err != nil {
		return nil, invalid(err)
	}
	if !cred.Flags.UserVerified || !cred.Flags.UserPresent {
		return nil, fmt.Errorf("%w: the authenticator did not verify the user", ErrInvalid)
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode credential: %w", err)
	}
	f := &storage.SecondFactor{
		ID: "f_" + strings.ToLower(rand.Text()), UserID: u.ID, Kind: storage.FactorPasskey, Name: CleanName(name),
		PublicData: data, CredentialID: base64.RawURLEncoding.EncodeToString(cred.ID),
		Counter: int64(cred.Authenticator.SignCount), Confirmed: true, CreatedAt: time.Now().UTC(),
	}
	if err := s.store.AddSecondFactor(ctx, f); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return nil, ErrDuplicate
		}
		return nil, fmt.Errorf("passkey: %w", err)
	}
	s.log.InfoContext(ctx, "passkey registered", "user", u.ID, "factor", f.ID, "synced", cred.Flags.BackupState)
	s.tell(ctx, u.ID, EventAdded)
	return f, nil
}

// Remove deletes the user's passkey id. ErrUnknown when the user has no
// such passkey.
func (s *Service) Remove(ctx context.Context, userID, id string) error {
	have, err := s.List(ctx, userID)
	if err != nil {
		return err
	}
	found := false
	for _, f := range have {
		found = found || f.ID == id
	}
	if !found {
		return ErrUnknown
	}
	if err := s.store.DeleteSecondFactor(ctx, userID, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrUnknown
		}
		return fmt.Errorf("passkey: %w", err)
	}
	s.log.InfoContext(ctx, "passkey removed", "user", userID, "factor", id)
	s.tell(ctx, userID, EventRemoved)
	return nil
}

// BeginLogin starts a sign-in with a discoverable passkey (the browser
// offers the user's passkeys for the RP ID), user verification required.
func (s *Service) BeginLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (*Ceremony, error) {
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	return s.put(ctx, w, r, PurposeLogin, "", sd, assertion)
}

// Assertion is a parsed sign-in answer, not verified yet.
type Assertion struct {
	parsed *protocol.ParsedCredentialAssertionData
}

// ParseAssertion parses the browser's answer (JSON of the
// PublicKeyCredential) to a sign-in; ErrInvalid when it is malformed.
func ParseAssertion(response string) (*Assertion, error) {
	p, err := protocol.ParseCredentialRequestResponseBytes([]byte(response))
	if err != nil {
		return nil, invalid(err)
	}
	return &Assertion{parsed: p}, nil
}

// UserID is the user the answer claims to be (its user handle), unverified:
// for the login limits only.
func (a *Assertion) UserID() string { return string(a.parsed.Response.UserHandle) }

// Result is a verified sign-in.
type Result struct {
	User   *storage.User
	Factor string   // the passkey's factor id
	AMR    []string // RFC 8176 methods
}

// FinishLogin verifies the answer a to the sign-in ceremony handle and
// records the passkey's use (new sign counter, flags). The caller checks
// that the user may sign in (active, not disabled). Errors: ErrExpired,
// ErrInvalid, ErrUnknown, ErrCounter, or the store's.
func (s *Service) FinishLogin(ctx context.Context, r *http.Request, handle string, a *Assertion) (*Result, error) {
	c, err := s.take(ctx, r, handle, PurposeLogin)
	if err != nil {
		return nil, err
	}
	return s.use(ctx, c, a, s.load(ctx))
}

// BeginReauth starts a ceremony in which the signed-in user u proves a
// passkey of theirs again (user verification required), bound to u, to
// this browser and to action (the change it confirms: a ceremony begun
// for one change does not confirm another): the account pages'
// re-authentication before a change of the second factors. The request
// lists exactly u's passkeys as allowCredentials, so the browser offers
// no passkey of another account. ErrUnknown when u has none.
func (s *Service) BeginReauth(ctx context.Context, w http.ResponseWriter, r *http.Request, u *storage.User, action string) (*Ceremony, error) {
	creds, err := s.credentials(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("passkey: begin re-authentication of user %s: %w", u.ID, ErrUnknown)
	}
	assertion, sd, err := s.wa.BeginLogin(&user{u: u, creds: creds}, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin re-authentication: %w", err)
	}
	return s.put(ctx, w, r, reauthPurpose(action), u.ID, sd, assertion)
}

// reauthPurpose is the ceremony purpose of a re-authentication for action.
func reauthPurpose(action string) string { return PurposeReauth + ":" + action }

// credentials are the credential records of userID's passkeys.
func (s *Service) credentials(ctx context.Context, userID string) ([]webauthn.Credential, error) {
	have, err := s.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	creds := make([]webauthn.Credential, 0, len(have))
	for _, f := range have {
		c, err := credentialOf(f)
		if err != nil {
			return nil, err
		}
		creds = append(creds, *c)
	}
	return creds, nil
}

// FinishReauth verifies the answer (the browser's JSON) to u's
// re-authentication ceremony handle for action and records the passkey's
// use. A ceremony begun for another user or another action is
// ErrExpired; a passkey of another account ErrUnknown (the library also
// refuses a credential outside the request's allowCredentials, and a
// user handle other than u's); else the errors of FinishLogin.
func (s *Service) FinishReauth(ctx context.Context, r *http.Request, u *storage.User, handle, action, response string) error {
	c, err := s.take(ctx, r, handle, reauthPurpose(action))
	if err != nil {
		return err
	}
	if c.UserID != u.ID {
		return ErrExpired
	}
	a, err := ParseAssertion(response)
	if err != nil {
		return err
	}
	_, err = s.use(ctx, c, a, func(credID, _ string) (*stored, error) {
		f, err := s.store.PasskeyByCredentialID(ctx, credID)
		if err != nil {
			return nil, err
		}
		if f.UserID != u.ID {
			return nil, fmt.Errorf("passkey of another user: %w", storage.ErrNotFound)
		}
		cred, err := credentialOf(*f)
		if err != nil {
			return nil, err
		}
		// All of u's passkeys: the library checks that the request's
		// allowCredentials are u's and the answer's is among them.
		creds, err := s.credentials(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		return &stored{factor: f, user: u, cred: cred, creds: creds}, nil
	})
	return err
}

// use verifies the answer a to the ceremony c against the passkey load
// returns and records the passkey's use (new sign counter, flags).
func (s *Service) use(ctx context.Context, c *storage.WebAuthnCeremony, a *Assertion, load func(credID, userHandle string) (*stored, error)) (*Result, error) {
	sd, err := sessionOf(c)
	if err != nil {
		return nil, err
	}
	k, cred, err := s.verify(ctx, sd, a, load)
	if err != nil {
		return nil, err
	}
	factor, owner := k.factor, k.user
	data, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode credential: %w", err)
	}
	if err := s.store.UsePasskey(ctx, factor.ID, int64(cred.Authenticator.SignCount), data); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			// Another sign-in with the same or a higher counter won.
			s.log.WarnContext(ctx, "passkey: sign counter did not advance, sign-in refused",
				"user", owner.ID, "factor", factor.ID, "got", cred.Authenticator.SignCount)
			return nil, ErrCounter
		}
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Result{User: owner, Factor: factor.ID, AMR: AMR(cred.Flags.BackupEligible)}, nil
}

// stored is a passkey as the store holds it, with its owner.
type stored struct {
	factor *storage.SecondFactor
	user   *storage.User
	cred   *webauthn.Credential
	// creds are the owner's credentials the library checks the answer
	// against: cred alone for a sign-in, all of the owner's for a
	// ceremony begun for that user (BeginReauth).
	creds []webauthn.Credential
}

// load reads the passkey of a credential id and its owner, who must be
// the user the answer names.
func (s *Service) load(ctx context.Context) func(credID, userHandle string) (*stored, error) {
	return func(credID, userHandle string) (*stored, error) {
		f, err := s.store.PasskeyByCredentialID(ctx, credID)
		if err != nil {
			return nil, err
		}
		if f.UserID != userHandle {
			return nil, fmt.Errorf("passkey of another user: %w", storage.ErrNotFound)
		}
		u, err := s.store.GetUser(ctx, f.UserID)
		if err != nil {
			return nil, err
		}
		c, err := credentialOf(*f)
		if err != nil {
			return nil, err
		}
		return &stored{factor: f, user: u, cred: c, creds: []webauthn.Credential{*c}}, nil
	}
}

// verify checks the answer a against the ceremony's session data sd and
// the passkey load returns (the broker's own work of a sign-in, beyond
// the reads): the library's verification, then the sign counter.
func (s *Service) verify(ctx context.Context, sd *webauthn.SessionData, a *Assertion, load func(credID, userHandle string) (*stored, error)) (*stored, *webauthn.Credential, error) {
	var (
		k      *stored
		lookup error
	)
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		k, lookup = load(base64.RawURLEncoding.EncodeToString(rawID), string(userHandle))
		if lookup != nil {
			return nil, lookup
		}
		return &user{u: k.user, creds: k.creds}, nil
	}
	var (
		cred *webauthn.Credential
		err  error
	)
	if len(sd.UserID) == 0 {
		_, cred, err = s.wa.ValidatePasskeyLogin(handler, *sd, a.parsed)
	} else {
		// A ceremony begun for one user (BeginReauth): the library checks
		// the session's user and its allowCredentials.
		var wu webauthn.User
		if wu, err = handler(a.parsed.RawID, a.parsed.Response.UserHandle); err == nil {
			cred, err = s.wa.ValidateLogin(wu, *sd, a.parsed)
		}
	}
	switch {
	case lookup != nil && errors.Is(lookup, storage.ErrNotFound):
		return nil, nil, ErrUnknown
	case lookup != nil:
		return nil, nil, fmt.Errorf("passkey: %w", lookup)
	case err != nil:
		return nil, nil, invalid(err)
	}
	if cred.Authenticator.CloneWarning {
		s.log.WarnContext(ctx, "passkey: sign counter went backwards, sign-in refused (cloned authenticator?)",
			"user", k.user.ID, "factor", k.factor.ID, "stored", k.factor.Counter, "got", a.parsed.Response.AuthenticatorData.Counter)
		return nil, nil, ErrCounter
	}
	return k, cred, nil
}

// AMR is the RFC 8176 methods of a passkey sign-in with user
// verification: "swk" for a passkey its provider may copy to other
// devices (backup eligible: the key is not bound to one piece of
// hardware), else "hwk"; "user" for the verification; and "mfa": the
// possession of the key and the verification are two factors (acr
// urn:bridgekeeper:acr:mfa).
func AMR(backupEligible bool) []string {
	key := "hwk"
	if backupEligible {
		key = "swk"
	}
	return []string{key, "user", "mfa"}
}

// CleanName is the name a passkey is stored under: trimmed, at most
// MaxNameLen runes of valid text without control characters, "Passkey"
// when nothing is left.
func CleanName(name string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(name) {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || n >= MaxNameLen {
			continue
		}
		b.WriteRune(r)
		n++
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		return s
	}
	return "Passkey"
}

func (s *Service) tell(ctx context.Context, userID, event string) {
	if s.notify != nil {
		s.notify(ctx, userID, event)
	}
}

// put stores the ceremony's session data under a new handle, bound to
// the browser's cookie (set when missing).
func (s *Service) put(ctx context.Context, w http.ResponseWriter, r *http.Request, purpose, userID string, sd *webauthn.SessionData, options any) (*Ceremony, error) {
	data, err := json.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode session: %w", err)
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode options: %w", err)
	}
	handle := randomValue()
	c := &storage.WebAuthnCeremony{
		ID: hash(handle), Binding: s.binding(w, r), Purpose: purpose, UserID: userID, Data: data,
		ExpiresAt: time.Now().Add(s.timeout),
	}
	if err := s.store.PutWebAuthnCeremony(ctx, c); err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Ceremony{Handle: handle, Options: string(opts)}, nil
}

// take uses up the ceremony handle of this browser.
func (s *Service) take(ctx context.Context, r *http.Request, handle, purpose string) (*storage.WebAuthnCeremony, error) {
	ck, err := s.cookies.Get(r, bindingCookie)
	if err != nil || len(ck.Value) < 32 || len(handle) < 32 || len(handle) > 128 {
		return nil, ErrExpired
	}
	c, err := s.store.TakeWebAuthnCeremony(ctx, hash(handle), hash(ck.Value), purpose)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrExpired
	}
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return c, nil
}

// binding returns the hash of the browser's ceremony cookie, setting a
// new one when there is none (and refreshing its expiry).
func (s *Service) binding(w http.ResponseWriter, r *http.Request) string {
	v := randomValue()
	if c, err := s.cookies.Get(r, bindingCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 128 {
		v = c.Value
	}
	s.cookies.Set(w, &http.Cookie{Name: bindingCookie, Value: v, Path: s.path, MaxAge: int((s.timeout + time.Hour) / time.Second)})
	return hash(v)
}

func sessionOf(c *storage.WebAuthnCeremony) (*webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return nil, fmt.Errorf("passkey: decode session: %w", err)
	}
	return &sd, nil
}

func credentialOf(f storage.SecondFactor) (*webauthn.Credential, error) {
	var c webauthn.Credential
	if err := json.Unmarshal(f.PublicData, &c); err != nil {
		return nil, fmt.Errorf("passkey %s: decode credential: %w", f.ID, err)
	}
	return &c, nil
}

// invalid wraps the library's error as ErrInvalid with its details (for
// the log; the user is told ErrInvalid's text).
func invalid(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, pe.Details, pe.DevInfo)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

func randomValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}
