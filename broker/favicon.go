package broker

import (
	_ "embed"
	"net/http"
	"strconv"
)

// favicon is the icon of the broker's pages (a keyhole, 32×32, PNG in an
// ICO), answered at /favicon.ico so browsers showing the login and account
// pages do not get a 404 for it on every view.
//
//go:embed favicon.ico
var favicon []byte

func handleFavicon(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "image/x-icon")
	h.Set("Content-Length", strconv.Itoa(len(favicon)))
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(favicon)
}
