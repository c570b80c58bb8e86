// Package mail sends the account e-mails (activation, password reset,
// e-mail change): over SMTP with STARTTLS or implicit TLS and
// authentication, or — the development default — to the log, so the links
// can be followed without a mail server.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one e-mail: a plain-text body and, optionally, an HTML
// alternative.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer delivers messages.
type Mailer interface {
	Send(ctx context.Context, msg Message) error
}

// Log is a Mailer that writes every message, links included, to a logger.
// It is meant for development: nothing leaves the machine.
type Log struct {
	Logger *slog.Logger // slog.Default() when nil
}

// Send logs the message's recipient, subject and text body, then each
// link of the body on a line of its own, easy to find and copy.
func (l Log) Send(ctx context.Context, msg Message) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.InfoContext(ctx, "mail (log mailer: not sent)", "to", msg.To, "subject", msg.Subject, "body", msg.Text)
	for _, link := range linkRE.FindAllString(msg.Text, -1) {
		logger.InfoContext(ctx, "mail link (log mailer: not sent)", "to", msg.To, "link", strings.TrimRight(link, ".,;:!?)"))
	}
	return nil
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"']+`)

// TLS modes for SMTPConfig.TLS.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS, which is required (default)
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS, usually port 465)
	TLSNone     = "none"     // no encryption: only for a relay on localhost
)

// SMTPConfig configures the SMTP mailer.
type SMTPConfig struct {
	Host     string // required
	Port     int    // default 587 (465 for TLSImplicit, 25 for TLSNone)
	TLS      string // TLSStartTLS (default), TLSImplicit or TLSNone
	Username string // AUTH when not empty (PLAIN, or LOGIN when the server offers only that)
	Password string
	From     string        // required, e.g. "Bridgekeeper <no-reply@example.com>"
	Timeout  time.Duration // per delivery; default 30s
	// TLSConfig overrides the TLS settings (e.g. RootCAs for a private CA).
	// ServerName defaults to Host.
	TLSConfig *tls.Config
}

// SMTP is a Mailer that delivers through an SMTP server, one connection per
// message.
type SMTP struct {
	cfg  SMTPConfig
	opts []gomail.Option
}

// NewSMTP checks the configuration and returns an SMTP mailer. It does not
// connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: host is required")
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp: from address %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cfg.Host
	}
	opts := []gomail.Option{gomail.WithTimeout(cfg.Timeout), gomail.WithTLSConfig(tlsConfig)}
	port := cfg.Port
	switch cfg.TLS {
	case "", TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		if port == 0 {
			port = 587
		}
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
		if port == 0 {
			port = 465
		}
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		if port == 0 {
			port = 25
		}
	default:
		return nil, fmt.Errorf("smtp: tls mode %q: want %q, %q or %q", cfg.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	opts = append(opts, gomail.WithPort(port))
	if cfg.Username != "" {
		auth := []gomail.Option{gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password)}
		if cfg.TLS == TLSNone {
			// PLAIN over a clear connection is refused by go-mail unless
			// asked for explicitly; TLSNone is only for a local relay.
			auth = append(auth, gomail.WithSMTPAuth(gomail.SMTPAuthPlainNoEnc))
		} else {
			auth = append(auth, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
		opts = append(opts, auth...)
	}
	if _, err := gomail.NewClient(cfg.Host, opts...); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return &SMTP{cfg: cfg, opts: opts}, nil
}

// Send delivers one message.
func (s *SMTP) Send(ctx context.Context, msg Message) error {
	m := gomail.NewMsg()
	if err := m.From(s.cfg.From); err != nil {
		return fmt.Errorf("smtp: from: %w", err)
	}
	if err := m.To(msg.To); err != nil {
		return fmt.Errorf("smtp: to: %w", err)
	}
	m.Subject(msg.Subject)
	m.SetDate()
	m.SetMessageID()
	m.SetBodyString(gomail.TypeTextPlain, msg.Text)
	if msg.HTML != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	}
	client, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := client.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("smtp: send to %s: %w", msg.To, err)
	}
	return nil
}
