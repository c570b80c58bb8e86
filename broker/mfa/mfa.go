// Package mfa holds the second factors of local accounts: TOTP
// authenticators (RFC 6238, github.com/pquerna/otp) with single-use codes,
// recovery codes, and the acr levels a sign-in reaches (acr.go).
//
// A factor is a storage.SecondFactor row of a kind (storage.FactorTOTP;
// a passkey is another kind): its secret sealed under the system secret
// (internal/secret, PurposeSecondFactor, with the user and factor ids as
// additional data), a counter that only grows (TOTP's last time step, so
// each code works once), and Confirmed once the user proved it works.
// Recovery codes are stored as HMAC-SHA-256 under a key of their own.
//
// Another kind of factor (a passkey) is a SecondFactor of its own Kind:
// PublicData holds what it keeps in the clear, Counter its sign counter
// (AdvanceFactorCounter refuses one that does not grow), and it counts in
// Factors and HasFactor like an authenticator, so a user who has one gets
// the broker's second step. A handler that verifies it there loads the
// step with broker.Server.SecondStep and finishes it with
// CompleteSecondStep(…, "hwk"); a sign-in by the factor alone calls
// CompleteLogin with an amr that holds "mfa" (ACR then gives ACRMFA).
// RemoveFactor removes any kind and notifies with the event KIND_removed.
package mfa

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// TOTP parameters: the defaults every authenticator app supports.
const (
	Period      = 30 // seconds per step
	Digits      = otp.DigitsSix
	Skew        = 1  // steps accepted either side of now
	RecoveryNum = 10 // recovery codes per set
)

// Errors of Verify and Confirm.
var (
	// ErrWrongCode: the code is not valid now (wrong, too old, already
	// used, or the user has no such factor). The user may try again.
	ErrWrongCode = errors.New("mfa: the code is not correct")
	// ErrNoFactor: the user has no confirmed second factor.
	ErrNoFactor = errors.New("mfa: no second factor")
)

// Events of Config.Notify.
const (
	EventTOTPAdded        = "totp_added"
	EventTOTPRemoved      = "totp_removed"
	EventRecoveryCodesNew = "recovery_codes_new"
	EventRecoveryCodeUsed = "recovery_code_used"
	EventFactorsReset     = "factors_reset"
)

// Store is what the Service uses of storage (*storage.Store has it).
type Store interface {
	AddSecondFactor(ctx context.Context, f *storage.SecondFactor) error
	ListSecondFactors(ctx context.Context, userID string) ([]storage.SecondFactor, error)
	DeleteUnconfirmedFactors(ctx context.Context, userID, kind string) error
	ConfirmSecondFactor(ctx context.Context, userID, id string, counter int64) error
	AdvanceFactorCounter(ctx context.Context, id string, counter int64) error
	DeleteSecondFactor(ctx context.Context, userID, id string) error
	DeleteSecondFactors(ctx context.Context, userID string) (int, error)
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string) error
	FirstRecoveryCodes(ctx context.Context, userID string, hashes []string) (bool, error)
	UseRecoveryCode(ctx context.Context, userID, hash string) error
	UnusedRecoveryCodes(ctx context.Context, userID string) (int, error)
}

// Config configures a Service.
type Config struct {
	Store  Store            // required
	Secret *secret.System   // required: seals TOTP keys, keys recovery-code hashes
	Issuer string           // the name authenticator apps show (ui.product_name)
	Now    func() time.Time // time.Now by default (tests)
	// Notify, when set, is told of every enrolment and removal (and of a
	// used recovery code) for the user: the account pages send the owner
	// an e-mail. It must not block for long.
	Notify func(ctx context.Context, userID, event string)
}

// Service manages second factors.
type Service struct {
	store   Store
	sealKey []byte
	hashKey []byte
	issuer  string
	now     func() time.Time
	notify  func(ctx context.Context, userID, event string)
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Secret == nil {
		return nil, errors.New("mfa: a store and the system secret are required")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "Bridgekeeper"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		store:   cfg.Store,
		sealKey: cfg.Secret.Derive(secret.PurposeSecondFactor),
		hashKey: cfg.Secret.Derive(secret.PurposeRecoveryCode),
		issuer:  cfg.Issuer,
		now:     cfg.Now,
		notify:  cfg.Notify,
	}, nil
}

// SetNotify sets the notification hook (the account pages are built after
// the broker that needs the Service).
func (s *Service) SetNotify(n func(ctx context.Context, userID, event string)) { s.notify = n }

func (s *Service) tell(ctx context.Context, userID, event string) {
	if s.notify != nil {
		s.notify(ctx, userID, event)
	}
}

// Factors returns the user's confirmed factors.
func (s *Service) Factors(ctx context.Context, userID string) ([]storage.SecondFactor, error) {
	all, err := s.store.ListSecondFactors(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	var out []storage.SecondFactor
	for _, f := range all {
		if f.Confirmed {
			out = append(out, f)
		}
	}
	return out, nil
}

// HasFactor reports whether the user has a confirmed factor of kind
// ("" for any).
func (s *Service) HasFactor(ctx context.Context, userID, kind string) (bool, error) {
	fs, err := s.Factors(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, f := range fs {
		if kind == "" || f.Kind == kind {
			return true, nil
		}
	}
	return false, nil
}

// Enrolment is a TOTP key shown to the user until a first code confirms it.
type Enrolment struct {
	FactorID string
	Secret   string // base32, for typing in by hand
	URL      string // otpauth:// URL (what the QR code holds)
	QR       string // data:image/png;base64,… of the QR code
}

// StartTOTP creates an unconfirmed TOTP factor for u, replacing any
// earlier unconfirmed one (so reloading the page adds no rows), and
// returns what to show.
func (s *Service) StartTOTP(ctx context.Context, u *storage.User) (*Enrolment, error) {
	if err := s.store.DeleteUnconfirmedFactors(ctx, u.ID, storage.FactorTOTP); err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	key, err := totp.Generate(s.opts(u, nil))
	if err != nil {
		return nil, fmt.Errorf("mfa: generate TOTP key: %w", err)
	}
	id := "f_" + strings.ToLower(rand.Text())
	sealed, err := secret.Seal(s.sealKey, []byte(key.Secret()), s.ad(u.ID, id))
	if err != nil {
		return nil, fmt.Errorf("mfa: seal TOTP key: %w", err)
	}
	f := &storage.SecondFactor{ID: id, UserID: u.ID, Kind: storage.FactorTOTP, Name: "Authenticator app", Secret: sealed, CreatedAt: s.now().UTC()}
	if err := s.store.AddSecondFactor(ctx, f); err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	return enrolment(id, key)
}

// PendingTOTP returns the user's unconfirmed TOTP enrolment id again (the
// page shown once more after a wrong first code); ErrNoFactor when there
// is none.
func (s *Service) PendingTOTP(ctx context.Context, u *storage.User, id string) (*Enrolment, error) {
	all, err := s.store.ListSecondFactors(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	for _, f := range all {
		if f.ID == id && f.Kind == storage.FactorTOTP && !f.Confirmed {
			b32, err := s.secretOf(u, &f)
			if err != nil {
				return nil, err
			}
			key, err := s.keyOf(u, b32)
			if err != nil {
				return nil, err
			}
			return enrolment(id, key)
		}
	}
	return nil, ErrNoFactor
}

func enrolment(id string, key *otp.Key) (*Enrolment, error) {
	img, err := key.Image(240, 240)
	if err != nil {
		return nil, fmt.Errorf("mfa: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("mfa: QR code: %w", err)
	}
	return &Enrolment{
		FactorID: id,
		Secret:   key.Secret(),
		URL:      key.URL(),
		QR:       "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
	}, nil
}

// ConfirmTOTP confirms the user's unconfirmed TOTP factor id with its
// first code, and returns a new set of recovery codes when the user has
// none unused (FirstRecoveryCodes), also when a passkey came first; nil
// when the user keeps the set it has. ErrWrongCode for a wrong code.
func (s *Service) ConfirmTOTP(ctx context.Context, u *storage.User, id, code string) ([]string, error) {
	all, err := s.store.ListSecondFactors(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	var f *storage.SecondFactor
	for i := range all {
		if all[i].ID == id && all[i].Kind == storage.FactorTOTP && !all[i].Confirmed {
			f = &all[i]
		}
	}
	if f == nil {
		return nil, ErrWrongCode
	}
	step, ok, err := s.matchTOTP(u, f, code)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrWrongCode
	}
	if err := s.store.ConfirmSecondFactor(ctx, u.ID, id, step); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, ErrWrongCode // confirmed concurrently
		}
		return nil, fmt.Errorf("mfa: %w", err)
	}
	s.tell(ctx, u.ID, EventTOTPAdded)
	return s.FirstRecoveryCodes(ctx, u.ID)
}

// FirstRecoveryCodes makes a set of recovery codes for a user who has a
// confirmed factor and no unused recovery code, and returns it (shown
// once); nil when the user has codes already or no factor. Whatever
// second factor comes first — authenticator app or passkey — its
// enrolment shows the codes that stand in for it when it is lost.
//
// Of concurrent first enrolments (two tabs) exactly one stores its set
// (storage's FirstRecoveryCodes); the others get nil, and their pages say
// that the recovery codes still work. Showing the winning set on both
// pages is impossible (only hashes are kept), and a second set must not
// replace the first: the codes the other tab showed, which the user may
// have written down already, would silently stop working.
func (s *Service) FirstRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	if ok, err := s.HasFactor(ctx, userID, ""); err != nil || !ok {
		return nil, err
	}
	codes, hashes := s.makeRecoveryCodes(userID)
	stored, err := s.store.FirstRecoveryCodes(ctx, userID, hashes)
	if err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	if !stored {
		return nil, nil
	}
	return codes, nil
}

// Verify checks code as a second factor of u: a current TOTP code of a
// confirmed authenticator (each code once), or an unused recovery code
// (used up). It returns the RFC 8176 method proven ("otp" for both) or
// ErrWrongCode (ErrNoFactor when the user has no factor at all).
func (s *Service) Verify(ctx context.Context, u *storage.User, code string) (string, error) {
	fs, err := s.Factors(ctx, u.ID)
	if err != nil {
		return "", err
	}
	if len(fs) == 0 {
		return "", ErrNoFactor
	}
	code = normalize(code)
	if len(code) == int(Digits) && isDigits(code) {
		for i := range fs {
			if fs[i].Kind != storage.FactorTOTP {
				continue
			}
			step, ok, err := s.matchTOTP(u, &fs[i], code)
			if err != nil {
				return "", err
			}
			if !ok {
				continue
			}
			// One statement moves the counter past this step: the same
			// code (or an older one) never works again.
			switch err := s.store.AdvanceFactorCounter(ctx, fs[i].ID, step); {
			case errors.Is(err, storage.ErrNotFound):
				return "", ErrWrongCode
			case err != nil:
				return "", fmt.Errorf("mfa: %w", err)
			}
			return "otp", nil
		}
		return "", ErrWrongCode
	}
	if len(code) != recoveryLen {
		return "", ErrWrongCode
	}
	switch err := s.store.UseRecoveryCode(ctx, u.ID, s.hashRecovery(u.ID, code)); {
	case errors.Is(err, storage.ErrNotFound):
		return "", ErrWrongCode
	case err != nil:
		return "", fmt.Errorf("mfa: %w", err)
	}
	s.tell(ctx, u.ID, EventRecoveryCodeUsed)
	return "otp", nil
}

// matchTOTP finds the step within ±Skew of now whose code is code, later
// than the factor's last used step.
func (s *Service) matchTOTP(u *storage.User, f *storage.SecondFactor, code string) (int64, bool, error) {
	code = normalize(code)
	if len(code) != int(Digits) || !isDigits(code) {
		return 0, false, nil
	}
	b32, err := s.secretOf(u, f)
	if err != nil {
		return 0, false, err
	}
	now := s.now().Unix() / Period
	for step := now - Skew; step <= now+Skew; step++ {
		if step <= f.Counter {
			continue
		}
		want, err := totp.GenerateCodeCustom(b32, time.Unix(step*Period, 0), totp.ValidateOpts{Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return 0, false, fmt.Errorf("mfa: TOTP code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true, nil
		}
	}
	return 0, false, nil
}

// secretOf opens the sealed TOTP key (base32) of f.
func (s *Service) secretOf(u *storage.User, f *storage.SecondFactor) (string, error) {
	plain, err := secret.Open(s.sealKey, f.Secret, s.ad(u.ID, f.ID))
	if err != nil {
		return "", fmt.Errorf("mfa: open TOTP key of factor %s: %w", f.ID, err)
	}
	return string(plain), nil
}

// keyOf rebuilds the otp.Key (for its QR code) of u's TOTP secret.
func (s *Service) keyOf(u *storage.User, b32 string) (*otp.Key, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b32)
	if err != nil {
		return nil, fmt.Errorf("mfa: TOTP key: %w", err)
	}
	return totp.Generate(s.opts(u, raw))
}

func (s *Service) opts(u *storage.User, raw []byte) totp.GenerateOpts {
	account := u.Email
	if account == "" {
		account = u.ID
	}
	return totp.GenerateOpts{Issuer: s.issuer, AccountName: account, Period: Period, Digits: Digits, Algorithm: otp.AlgorithmSHA1, Secret: raw}
}

// ad binds a sealed secret to its user and factor: a sealed value copied
// to another row does not open.
func (s *Service) ad(userID, factorID string) []byte {
	return []byte("bridgekeeper second factor v1\x00" + userID + "\x00" + factorID)
}

// RemoveFactor deletes the user's factor id (its recovery codes go with
// the last one). ErrNoFactor when the user has no such factor.
func (s *Service) RemoveFactor(ctx context.Context, userID, id string) error {
	fs, err := s.Factors(ctx, userID)
	if err != nil {
		return err
	}
	var kind string
	for _, f := range fs {
		if f.ID == id {
			kind = f.Kind
		}
	}
	if kind == "" {
		return ErrNoFactor
	}
	if err := s.store.DeleteSecondFactor(ctx, userID, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNoFactor
		}
		return fmt.Errorf("mfa: %w", err)
	}
	s.tell(ctx, userID, kind+"_removed")
	return nil
}

// Reset removes every factor and recovery code of the user (an operator's
// bridgekeeper user reset-mfa, or a password reset the configuration
// allows to) and says how many factors there were.
func (s *Service) Reset(ctx context.Context, userID string) (int, error) {
	n, err := s.store.DeleteSecondFactors(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("mfa: %w", err)
	}
	if n > 0 {
		s.tell(ctx, userID, EventFactorsReset)
	}
	return n, nil
}

// NewRecoveryCodes replaces the user's recovery codes with a new set and
// returns it (shown once; only hashes are kept). ErrNoFactor when the user
// has no confirmed factor.
func (s *Service) NewRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	if ok, err := s.HasFactor(ctx, userID, ""); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrNoFactor
	}
	codes, err := s.newRecoveryCodes(ctx, userID)
	if err == nil {
		s.tell(ctx, userID, EventRecoveryCodesNew)
	}
	return codes, err
}

// UnusedRecoveryCodes counts the user's unused recovery codes.
func (s *Service) UnusedRecoveryCodes(ctx context.Context, userID string) (int, error) {
	n, err := s.store.UnusedRecoveryCodes(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("mfa: %w", err)
	}
	return n, nil
}

// recoveryLen is the length of a recovery code without its dash: ten
// characters of rand.Text's base32 alphabet (50 bits).
const recoveryLen = 10

func (s *Service) newRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes, hashes := s.makeRecoveryCodes(userID)
	if err := s.store.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, fmt.Errorf("mfa: %w", err)
	}
	return codes, nil
}

// makeRecoveryCodes makes a set of recovery codes of the user: the codes
// as shown (xxxxx-xxxxx) and the hashes stored.
func (s *Service) makeRecoveryCodes(userID string) (codes, hashes []string) {
	codes = make([]string, RecoveryNum)
	hashes = make([]string, RecoveryNum)
	for i := range codes {
		c := strings.ToLower(rand.Text()[:recoveryLen])
		codes[i] = c[:5] + "-" + c[5:]
		hashes[i] = s.hashRecovery(userID, c)
	}
	return codes, hashes
}

func (s *Service) hashRecovery(userID, code string) string {
	m := hmac.New(sha256.New, s.hashKey)
	m.Write([]byte(userID + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// normalize drops spaces and dashes and lower-cases a typed code.
func normalize(code string) string {
	if len(code) > 64 {
		return ""
	}
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code)))
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
