package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bridgekeeper/bridgekeeper/internal/pagekit"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

const (
	csrfCookie = "bk_form"
	csrfField  = "csrf_token"
	maxForm    = 64 << 10
)

// page is what every page template sees.
type page struct {
	Theme      Theme
	Base       string // path prefix of the pages
	Title      string
	CSRF       string
	ReturnTo   string // the application's URL, to link back to
	LoginID    string // the broker's pending login, to continue signing in
	SignInURL  string // where to continue signing in ("" without a pending login)
	Error      string
	ErrorField string // the input the error is about ("" for the page)
	Notice     string
	Values     map[string]string // inputs to fill in again (never passwords)
	Token      string
	User       *storage.User
	MFA        *mfaView     // two-step verification (nil without Config.Factors)
	Passkeys   *passkeyView // passkeys (nil without Config.Passkeys)
	Links      []pageLink
	// RevocationDelay says how long an API may accept an access token
	// issued before a sign-out everywhere, and why (see revocationDelay).
	RevocationDelay string
	// RequireActivation and AllowRegistration let templates word things.
	RequireActivation bool
	AllowRegistration bool
}

func (p *page) back() back { return back{ReturnTo: p.ReturnTo, Login: p.LoginID} }

// Query is the query string that keeps the way back on links between the
// pages ("" or "?return_to=…&login=…").
func (p *page) Query() string {
	if q := p.back().values(); len(q) > 0 {
		return "?" + q.Encode()
	}
	return ""
}

type pageLink struct{ Href, Text string }

func (s *Service) newPage(w http.ResponseWriter, r *http.Request, title string) *page {
	b := s.backOf(r)
	return &page{
		Theme:             s.cfg.Theme,
		Base:              s.base,
		Title:             title,
		CSRF:              s.csrfToken(w, r),
		ReturnTo:          b.ReturnTo,
		LoginID:           b.Login,
		SignInURL:         s.signInURL(b),
		Values:            map[string]string{},
		RequireActivation: s.cfg.RequireActivation,
		AllowRegistration: s.cfg.AllowRegistration,
		RevocationDelay:   s.revocationDelay(),
	}
}

// form is the page a POST handler answers with its form: the template and
// its title.
type form struct{ tmpl, title string }

// protect wraps every page: security headers, cross-origin protection, a
// bounded form, the double-submit token, and text every field can hold on
// POST (f is the form shown again when a field cannot be used).
func (s *Service) protect(h http.HandlerFunc, f form) http.Handler {
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				s.message(w, r, http.StatusBadRequest, "Something went wrong", "", "The form could not be read. Go back and try again.")
				return
			}
			if !s.csrfValid(r) {
				s.message(w, r, http.StatusForbidden, "This form has expired", "",
					"This form has expired or was sent from another site. Go back, reload the page and try again.")
				return
			}
			if field := unusableField(r.PostForm); field != "" {
				s.unusableInput(w, r, f, field)
				return
			}
		}
		h(w, r)
	})
	protected := s.cop.Handler(checked)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.tmpl.pages.SetHeaders(w) // every answer, redirects too
		protected.ServeHTTP(w, r)
	})
}

// unusableField returns the name of the first field (in name order) whose
// value is no text: a NUL byte or invalid UTF-8, which no column can hold
// and no one types. "" when every field is fine.
func unusableField(form url.Values) string {
	names := slices.Sorted(maps.Keys(form))
	for _, name := range names {
		if !usableText(name) {
			return name
		}
		for _, v := range form[name] {
			if !usableText(v) {
				return name
			}
		}
	}
	return ""
}

func usableText(v string) bool { return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 }

// fieldLabels name the inputs in messages.
var fieldLabels = map[string]string{
	"name":             "Your name",
	"email":            "The e-mail address",
	"new_email":        "The new e-mail address",
	"password":         "The password",
	"current_password": "The current password",
	"new_password":     "The new password",
	"email_password":   "The current password",
}

// unusableInput answers a form with a field that holds no text: 400, the
// form again with an error on that field, and nothing done.
func (s *Service) unusableInput(w http.ResponseWriter, r *http.Request, f form, field string) {
	if f.tmpl == "" || (f.tmpl == "register" && !s.cfg.AllowRegistration) {
		s.message(w, r, http.StatusBadRequest, "Check what you entered", "",
			"The form contains a character that can't be used here. Go back, correct it and try again.")
		return
	}
	label, ok := fieldLabels[field]
	if !ok {
		label, field = "The form", ""
	}
	p := s.newPage(w, r, f.title)
	p.Error = label + " contains a character that can't be used here (a NUL byte, or text that is not valid UTF-8). Correct it and try again."
	p.ErrorField = field
	for _, name := range []string{"name", "email", "new_email"} {
		if v := r.PostForm.Get(name); usableText(v) {
			p.Values[name] = strings.TrimSpace(v)
		}
	}
	if tok := r.PostForm.Get("token"); validTokenFormat(tok) {
		p.Token = tok
	}
	if f.tmpl == "account" {
		if p.User = s.signedInUser(w, r); p.User == nil {
			return
		}
	}
	s.render(w, r, http.StatusBadRequest, f.tmpl, p)
}

func (s *Service) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.log.WarnContext(r.Context(), "cross-origin form post refused", "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	s.message(w, r, http.StatusForbidden, "Request refused", "",
		"This form was sent from another site and has been refused. Open the page again and send it from there.")
}

// csrfToken returns the browser's form token, setting the cookie when it has none.
func (s *Service) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := s.cookies.Get(r, csrfCookie); err == nil && validTokenFormat(c.Value) {
		return c.Value
	}
	v := rand.Text()
	s.cookies.Set(w, &http.Cookie{Name: csrfCookie, Value: v, Path: s.base + "/"})
	// Requests later in this exchange (a page rendered after a POST) see it too.
	r.AddCookie(&http.Cookie{Name: s.cookies.Name(csrfCookie), Value: v})
	return v
}

func (s *Service) csrfValid(r *http.Request) bool {
	c, err := s.cookies.Get(r, csrfCookie)
	if err != nil || !validTokenFormat(c.Value) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) == 1
}

// validTokenFormat accepts what rand.Text produces (base32, 26 characters).
func validTokenFormat(v string) bool {
	if len(v) != 26 {
		return false
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// render writes a page; a template error becomes a plain 500.
func (s *Service) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	s.tmpl.pages.Render(w, r, status, name+".html", p)
}

// message renders the message page (a notice: something done) or, for an
// error, the error page every page shares, with the links and the ways
// back to the sign-in and the application.
func (s *Service) message(w http.ResponseWriter, r *http.Request, status int, title, notice, errText string, links ...pageLink) {
	p := s.newPage(w, r, title)
	if notice != "" || errText == "" {
		p.Notice, p.Error, p.Links = notice, errText, links
		s.render(w, r, status, "message", p)
		return
	}
	d := pagekit.ErrorData{Title: title, Message: errText}
	for _, l := range links {
		d.Links = append(d.Links, pagekit.Link{Label: l.Text, URL: l.Href})
	}
	if p.SignInURL != "" {
		d.Links = append(d.Links, pagekit.Link{Label: "Continue signing in", URL: p.SignInURL})
	}
	if p.ReturnTo != "" {
		d.Links = append(d.Links, pagekit.Link{Label: "Back to the application", URL: p.ReturnTo})
	}
	s.tmpl.pages.Error(w, r, status, d)
}

func (s *Service) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), "accounts: "+what, "err", err)
	s.message(w, r, http.StatusInternalServerError, "Something went wrong", "",
		"Something went wrong on our side. Please try again in a moment.")
}

// tooMany answers a request over its limit: 429, Retry-After and a lockout message.
func (s *Service) tooMany(w http.ResponseWriter, r *http.Request, retryAfter time.Duration) {
	secs := retryAfterSeconds(retryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.message(w, r, http.StatusTooManyRequests, "Too many attempts", "",
		fmt.Sprintf("Too many attempts. For your security, try again in %s.", humanDuration(time.Duration(secs)*time.Second)))
}

// userMessage turns an error meant for people into a sentence.
func userMessage(err error) string {
	m := err.Error()
	r, n := utf8.DecodeRuneInString(m)
	m = string(unicode.ToUpper(r)) + m[n:]
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

var errBadEmail = errors.New("enter an e-mail address like name@example.com")

// parseEmail accepts a bare address and returns it lower-cased.
func parseEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", errBadEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", errBadEmail
	}
	return strings.ToLower(a.Address), nil
}

// humanDuration words a duration for people: "48 hours", "1 hour", "15 minutes".
func humanDuration(d time.Duration) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int((d+time.Minute-1)/time.Minute), "minute")
	default:
		return plural(int((d+time.Second-1)/time.Second), "second")
	}
}
