package passkey

import (
	_ "embed"
	"net/http"
	"strconv"
)

// ScriptPath is where the broker serves the passkey script, relative to
// the issuer.
const ScriptPath = "/login/passkey.js"

//go:embed static/passkey.js
var script []byte

// ScriptURL is the absolute URL of the passkey script.
func (s *Service) ScriptURL() string { return s.script }

// ServeScript serves the passkey script (the pages' only script).
func ServeScript(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(script)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(script)
	}
}

// AllowScript returns w with the page's Content-Security-Policy widened,
// when its header is written, to run the passkey script and nothing
// else (script-src names the script's URL alone): the page kit's policy
// allows no script at all.
func (s *Service) AllowScript(w http.ResponseWriter) http.ResponseWriter {
	return &scriptWriter{ResponseWriter: w, src: s.script}
}

type scriptWriter struct {
	http.ResponseWriter
	src   string
	wrote bool
}

func (w *scriptWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if csp := w.Header().Get("Content-Security-Policy"); csp != "" {
			w.Header().Set("Content-Security-Policy", csp+"; script-src "+w.src)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *scriptWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *scriptWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
