package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// formPostScript submits the form_post page's form; the page's CSP allows
// this script (by its hash) and no other.
const formPostScript = `document.forms[0].submit()`

// formPostCSP is the Content-Security-Policy of the form_post page: the
// one of every broker page, plus the submitting script.
var formPostCSP = func() string {
	h := sha256.Sum256([]byte(formPostScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'; " +
		"style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
}()

// formPostTemplate is the page of a response_mode=form_post answer (OAuth
// 2.0 Form Post Response Mode), code or error, for fosite to fill in. It
// carries the broker's issuer as iss (RFC 9207) when fosite's parameters
// lack it (fosite's error answers do).
func formPostTemplate(issuer string) *template.Template {
	return template.Must(template.New("form_post").Funcs(template.FuncMap{
		"issuer": func() string { return issuer },
	}).Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Continue</title></head>
<body>
<form method="post" action="{{ .RedirURL }}">
{{- range $key, $values := .Parameters }}{{ range $values }}
<input type="hidden" name="{{ $key }}" value="{{ . }}">
{{- end }}{{ end }}
{{- if not (index .Parameters "iss") }}
<input type="hidden" name="iss" value="{{ issuer }}">
{{- end }}
<noscript><p>JavaScript is off: press the button to continue.</p><button type="submit">Continue</button></noscript>
</form>
<script>` + formPostScript + `</script>
</body>
</html>
`))
}

// authorizeWriter is the writer fosite's authorization answers (codes and
// errors, in every response mode) go through:
//   - a redirect carries the broker's issuer as iss (RFC 9207), so a client
//     that talks to several authorization servers can tell which one
//     answered (mix-up attacks, RFC 9700 §4.4): in the fragment for
//     response_mode=fragment, else in the query;
//   - a page (response_mode=form_post; its template adds iss) gets the
//     security headers of every broker page, with a CSP that allows only
//     its own submitting script.
type authorizeWriter struct {
	http.ResponseWriter
	s       *Server
	started bool
}

func (s *Server) withIssuer(w http.ResponseWriter) http.ResponseWriter {
	return &authorizeWriter{ResponseWriter: w, s: s}
}

func (w *authorizeWriter) start(code int) {
	if w.started {
		return
	}
	w.started = true
	h := w.Header()
	if code >= 300 && code < 400 {
		if loc := h.Get("Location"); loc != "" {
			h.Set("Location", withIssuerParam(loc, w.s.cfg.Issuer))
		}
		return
	}
	if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		w.s.setPageHeaders(w.ResponseWriter)
		h.Set("Content-Security-Policy", formPostCSP)
	}
}

func (w *authorizeWriter) WriteHeader(code int) {
	w.start(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *authorizeWriter) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// withIssuerParam adds iss=issuer to a redirect's fragment when it has
// one (response_mode=fragment), else to its query; unless it is there.
func withIssuerParam(loc, issuer string) string {
	param := "iss=" + url.QueryEscape(issuer)
	if base, frag, ok := strings.Cut(loc, "#"); ok {
		if v, err := url.ParseQuery(frag); err == nil && v.Has("iss") {
			return loc
		}
		if frag == "" {
			return base + "#" + param
		}
		return base + "#" + frag + "&" + param
	}
	u, err := url.Parse(loc)
	if err != nil || u.Query().Has("iss") {
		return loc
	}
	if u.RawQuery == "" {
		u.RawQuery = param
	} else {
		u.RawQuery += "&" + param
	}
	return u.String()
}
