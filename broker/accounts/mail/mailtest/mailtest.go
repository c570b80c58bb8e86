// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp) on
// loopback for tests: it accepts every message, parses it (headers, text and
// HTML parts) and hands it to the test.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configures the server.
type Options struct {
	// TLS enables STARTTLS with this configuration.
	TLS *tls.Config
	// ImplicitTLS makes the server speak TLS from the first byte (SMTPS)
	// with the TLS configuration, instead of offering STARTTLS.
	ImplicitTLS bool
	// Username and Password, when set, are the only credentials accepted by
	// AUTH PLAIN, and mail is refused without authentication.
	Username, Password string
}

// Message is one received e-mail.
type Message struct {
	From   string
	To     []string
	Header mail.Header
	Text   string // the decoded text/plain part
	HTML   string // the decoded text/html part
	Raw    []byte
	// TLS is true when the message arrived over an encrypted connection.
	TLS bool
	// AuthUser is the user that authenticated ("" when none did).
	AuthUser string
}

// Server is a running SMTP server.
type Server struct {
	Host string
	Port int

	srv      *smtp.Server
	messages chan Message
	mu       sync.Mutex
	received int
}

// Start listens on 127.0.0.1 on a free port; the server stops when the test
// ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s := &Server{messages: make(chan Message, 100)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{server: s, opts: opts, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = opts.TLS
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.AllowInsecureAuth = opts.TLS == nil
	addr := ln.Addr().(*net.TCPAddr)
	if opts.ImplicitTLS {
		if opts.TLS == nil {
			t.Fatal("mailtest: ImplicitTLS needs TLS")
		}
		ln = tls.NewListener(ln, opts.TLS)
		s.srv.TLSConfig = nil
	}
	s.Host, s.Port = "127.0.0.1", addr.Port
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// Next waits for the next message (failing the test after 10 seconds).
func (s *Server) Next(t testing.TB) Message {
	t.Helper()
	select {
	case m := <-s.messages:
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("mailtest: no message arrived")
		return Message{}
	}
}

// Received reports how many messages have arrived so far.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

type session struct {
	server   *Server
	opts     Options
	conn     *smtp.Conn
	authUser string
	from     string
	to       []string
}

func (s *session) AuthMechanisms() []string {
	if s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.opts.Username || password != s.opts.Password {
			return errors.New("invalid credentials")
		}
		s.authUser = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.opts.Username != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: err.Error()}
	}
	m.From, m.To, m.AuthUser = s.from, s.to, s.authUser
	_, m.TLS = s.conn.TLSConnectionState()
	s.server.mu.Lock()
	s.server.received++
	s.server.mu.Unlock()
	s.server.messages <- m
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// Parse reads a raw RFC 5322 message and decodes its text and HTML parts.
func Parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("parse message: %w", err)
	}
	m := Message{Header: msg.Header, Raw: raw}
	if err := walk(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return Message{}, err
	}
	return m, nil
}

func walk(m *Message, contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := walk(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("decode %s part: %w", mediaType, err)
	}
	switch mediaType {
	case "text/plain":
		m.Text = string(b)
	case "text/html":
		m.HTML = string(b)
	}
	return nil
}

type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		c, err := n.r.Read(p)
		j := 0
		for _, b := range p[:c] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// SelfSignedTLS returns a server TLS configuration with a fresh certificate
// for 127.0.0.1 and localhost, and a client configuration that trusts it.
func SelfSignedTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mailtest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }
