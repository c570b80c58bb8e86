package accounts_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker/accounts"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail"
	"github.com/bridgekeeper/bridgekeeper/broker/accounts/mail/mailtest"
	"github.com/bridgekeeper/bridgekeeper/storage"
	"github.com/bridgekeeper/bridgekeeper/storage/storagetest"
)

// clock is the service's clock, moved by tests to expire links and windows.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sessionCookie stands in for the broker's session cookie: its value is a
// browser session id in storage.
const sessionCookie = "test_session"

// testBroker stands in for the broker the pages are served beside: the
// session cookie names a browser session in storage, and its sign-in link
// is the broker's /login/start with the way back.
type testBroker struct{ store *storage.Store }

func (b testBroker) CurrentUser(r *http.Request) (*storage.User, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, nil
	}
	bs, err := b.store.GetBrowserSession(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	return b.store.GetUser(r.Context(), bs.UserID)
}

func (testBroker) SignInURL(back string) string {
	return "/login/start?return_to=" + url.QueryEscape(back)
}

type harness struct {
	t     testing.TB
	store *storage.Store
	svc   *accounts.Service
	srv   *httptest.Server
	smtp  *mailtest.Server
	clock *clock
	http  *http.Client // a browser: cookies, no redirects
}

// forEachBackend runs f against SQLite and (when configured) Postgres.
func forEachBackend(t *testing.T, f func(t *testing.T, store *storage.Store)) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			store, _ := b.Open(t)
			f(t, store)
		})
	}
}

// newHarness starts the pages on a loopback HTTP server that mail through a
// loopback SMTP server. modify may change the configuration.
func newHarness(t testing.TB, store *storage.Store, modify func(*accounts.Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: store, clock: &clock{now: time.Now().UTC().Truncate(time.Second)}}
	h.smtp = mailtest.Start(t, mailtest.Options{})
	mailer, err := mail.NewSMTP(mail.SMTPConfig{Host: h.smtp.Host, Port: h.smtp.Port, TLS: mail.TLSNone, From: "Bridgekeeper <no-reply@example.test>"})
	if err != nil {
		t.Fatal(err)
	}
	router := mux.NewRouter()
	h.srv = httptest.NewUnstartedServer(router)
	t.Cleanup(h.srv.Close)
	cfg := accounts.Config{
		Store:             store,
		Logger:            slog.New(slog.DiscardHandler),
		Issuer:            "http://" + h.srv.Listener.Addr().String(),
		Mailer:            mailer,
		AllowRegistration: true,
		RequireActivation: true,
		Now:               h.clock.Now,
		MinResponseTime:   time.Millisecond,
		AllowedReturnURL:  func(u string) bool { return strings.HasPrefix(u, "https://app.example.test/") },
	}
	if modify != nil {
		modify(&cfg)
	}
	if strings.HasPrefix(cfg.Issuer, "https://") {
		h.srv.StartTLS() // modify made the issuer https
	} else {
		h.srv.Start()
	}
	h.svc, err = accounts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.svc.Close() })
	h.svc.Routes(router, testBroker{store})
	h.http = h.newBrowser()
	return h
}

func (h *harness) newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: h.srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	return h.doWith(h.http, req)
}

func (h *harness) doWith(c *http.Client, req *http.Request) response {
	h.t.Helper()
	res, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

// get fetches a page (path or absolute URL).
func (h *harness) get(target string) response {
	h.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = h.srv.URL + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	actionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// submit opens page like a browser, fills in fields, and posts the form
// whose action is action (the first form when action is "").
func (h *harness) submit(page, action string, fields url.Values) response {
	h.t.Helper()
	p := h.get(page)
	if p.status != http.StatusOK {
		h.t.Fatalf("GET %s: %d\n%s", page, p.status, p.body)
	}
	return h.submitOn(p, action, fields)
}

// submitOn posts a form of an already fetched page.
func (h *harness) submitOn(p response, action string, fields url.Values) response {
	h.t.Helper()
	form := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if action == "" {
		m := actionRE.FindStringSubmatch(p.body)
		if m == nil {
			h.t.Fatalf("no form on the page:\n%s", p.body)
		}
		action = html.UnescapeString(m[1])
	}
	for k, v := range fields {
		form[k] = v
	}
	return h.post(action, form, nil)
}

// post sends a form as is, with extra headers.
func (h *harness) post(path string, form url.Values, header http.Header) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return h.do(req)
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// mailLink waits for the next e-mail, checks its recipient and subject, and
// returns the first link in its text that contains path.
func (h *harness) mailLink(to, subjectPart, path string) string {
	h.t.Helper()
	m := h.smtp.Next(h.t)
	if len(m.To) != 1 || m.To[0] != to {
		h.t.Fatalf("mail to %v, want %s", m.To, to)
	}
	if s := m.Header.Get("Subject"); !strings.Contains(s, subjectPart) {
		h.t.Fatalf("mail subject %q, want it to contain %q", s, subjectPart)
	}
	for _, l := range linkRE.FindAllString(m.Text, -1) {
		if strings.Contains(l, path) {
			if !strings.Contains(m.HTML, html.EscapeString(l)) {
				h.t.Errorf("the HTML part lacks the link %s", l)
			}
			return l
		}
	}
	h.t.Fatalf("no %s link in the mail:\n%s", path, m.Text)
	return ""
}

// register fills in the registration form.
func (h *harness) register(name, email, password string) response {
	h.t.Helper()
	return h.submit("/register", "", url.Values{"name": {name}, "email": {email}, "password": {password}})
}

// followLink opens an e-mailed link and confirms its form, with extra fields.
func (h *harness) followLink(link string, fields url.Values) response {
	h.t.Helper()
	return h.submit(link, "", fields)
}

// signIn makes the browser signed in as the user (a broker session).
func (h *harness) signIn(c *http.Client, userID string) string {
	h.t.Helper()
	id := "sess-" + userID + "-" + time.Now().Format("150405.000000000")
	now := time.Now()
	if err := h.store.CreateBrowserSession(context.Background(), &storage.BrowserSession{ID: id, UserID: userID, AuthTime: now,
		IDP: "local", AMR: []string{"pwd"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		h.t.Fatal(err)
	}
	u, _ := url.Parse(h.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: id, Path: "/"}})
	return id
}

func (h *harness) user(email string) *storage.User {
	h.t.Helper()
	u, err := h.store.GetUserByEmail(context.Background(), email)
	if err != nil {
		h.t.Fatalf("user %s: %v", email, err)
	}
	return u
}

func wantStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, r.status, status, r.body)
	}
}

func wantBody(t *testing.T, what string, r response, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.body, p) {
			t.Fatalf("%s: body lacks %q\n%s", what, p, r.body)
		}
	}
}
