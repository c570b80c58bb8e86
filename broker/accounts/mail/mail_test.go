package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail/mailtest"
)

func TestSMTPStartTLSWithAuth(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	srv := mailtest.Start(t, mailtest.Options{TLS: serverTLS, Username: "bk", Password: "s3cret"})
	m, err := mail.NewSMTP(mail.SMTPConfig{
		Host: srv.Host, Port: srv.Port, TLS: mail.TLSStartTLS,
		Username: "bk", Password: "s3cret",
		From: "Bridgekeeper <no-reply@example.test>", TLSConfig: clientTLS,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), mail.Message{
		To: "ada@example.test", Subject: "Activate your account",
		Text: "Open https://id.example.test/activate?token=abc to activate.",
		HTML: `<p><a href="https://id.example.test/activate?token=abc">Activate</a></p>`,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t)
	if !got.TLS || got.AuthUser != "bk" {
		t.Errorf("TLS=%v AuthUser=%q, want an encrypted, authenticated delivery", got.TLS, got.AuthUser)
	}
	if len(got.To) != 1 || got.To[0] != "ada@example.test" {
		t.Errorf("recipients %v", got.To)
	}
	if s := got.Header.Get("Subject"); s != "Activate your account" {
		t.Errorf("subject %q", s)
	}
	if !strings.Contains(got.Text, "https://id.example.test/activate?token=abc") {
		t.Errorf("text part %q lacks the link", got.Text)
	}
	if !strings.Contains(got.HTML, `href="https://id.example.test/activate?token=abc"`) {
		t.Errorf("html part %q lacks the link", got.HTML)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	srv := mailtest.Start(t, mailtest.Options{TLS: serverTLS, ImplicitTLS: true, Username: "bk", Password: "s3cret"})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSImplicit,
		Username: "bk", Password: "s3cret", From: "no-reply@example.test", TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "ada@example.test", Subject: "Hi", Text: "over SMTPS"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.Next(t); !got.TLS || got.AuthUser != "bk" {
		t.Errorf("TLS=%v AuthUser=%q", got.TLS, got.AuthUser)
	}
}

func TestSMTPUntrustedCertificateRefused(t *testing.T) {
	serverTLS, _ := mailtest.SelfSignedTLS(t)
	srv := mailtest.Start(t, mailtest.Options{TLS: serverTLS})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "no-reply@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "ada@example.test", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("sent over STARTTLS to a server with an untrusted certificate")
	}
}

func TestSMTPWrongPasswordFails(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	srv := mailtest.Start(t, mailtest.Options{TLS: serverTLS, Username: "bk", Password: "s3cret"})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, Username: "bk", Password: "wrong",
		From: "no-reply@example.test", TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "ada@example.test", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("Send with a wrong password succeeded")
	}
}

func TestSMTPStartTLSRequired(t *testing.T) {
	// A server without STARTTLS: the default mode must refuse to send in the clear.
	srv := mailtest.Start(t, mailtest.Options{})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, From: "no-reply@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "ada@example.test", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("sent without TLS although STARTTLS is required")
	}
	if n := srv.Received(); n != 0 {
		t.Fatalf("server received %d messages", n)
	}
}

func TestSMTPPlainRelay(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	m, err := mail.NewSMTP(mail.SMTPConfig{Host: srv.Host, Port: srv.Port, TLS: mail.TLSNone, From: "no-reply@example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), mail.Message{To: "bob@example.test", Subject: "Hi", Text: "plain only"}); err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t)
	if got.TLS || strings.TrimSpace(got.Text) != "plain only" || got.HTML != "" {
		t.Errorf("got TLS=%v text=%q html=%q", got.TLS, got.Text, got.HTML)
	}
}

func TestNewSMTPValidates(t *testing.T) {
	for _, cfg := range []mail.SMTPConfig{
		{From: "a@example.test"},
		{Host: "127.0.0.1", From: "not an address"},
		{Host: "127.0.0.1", From: "a@example.test", TLS: "ssl3"},
	} {
		if _, err := mail.NewSMTP(cfg); err == nil {
			t.Errorf("NewSMTP(%+v) accepted an invalid configuration", cfg)
		}
	}
}

func TestLogMailerLogsTheLink(t *testing.T) {
	var buf bytes.Buffer
	l := mail.Log{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := l.Send(context.Background(), mail.Message{To: "ada@example.test", Subject: "Reset", Text: "https://id.example.test/reset/confirm?token=xyz"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "https://id.example.test/reset/confirm?token=xyz") || !strings.Contains(buf.String(), "ada@example.test") {
		t.Errorf("log %q lacks the recipient or the link", buf.String())
	}
}

// Each link of a logged e-mail gets a log line of its own, its value
// nothing but the link (no surrounding text, no trailing full stop), so it
// can be copied as is.
func TestLogMailerLogsEachLinkOnItsOwnLine(t *testing.T) {
	var buf bytes.Buffer
	l := mail.Log{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	text := "Hello Ada,\n\nconfirm: https://id.example.test/activate?token=a1.\nOr ignore it (http://127.0.0.1:8080/help).\n"
	if err := l.Send(context.Background(), mail.Message{To: "ada@example.test", Subject: "Activate", Text: text}); err != nil {
		t.Fatal(err)
	}
	var links []string
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if link, ok := rec["link"].(string); ok {
			links = append(links, link)
			if rec["to"] != "ada@example.test" {
				t.Errorf("link line without the recipient: %s", line)
			}
		}
	}
	want := []string{"https://id.example.test/activate?token=a1", "http://127.0.0.1:8080/help"}
	if !slices.Equal(links, want) {
		t.Errorf("link lines %q, want %q\n%s", links, want, buf.String())
	}
}
