// Command testissuer runs the oidctest issuer and a static file server for
// the browser tests of the npm package. It listens on two loopback ports
// (issuer and app, so the app's calls are cross-origin) and prints one JSON
// line: {"issuer": "...", "app": "..."}. With -demo DIR it serves DIR (the
// React demo's production build, wasm/example) as a single-page app on a
// third port, registered at the issuer like the test app, and prints its
// URL as "demo". With -dpop it advertises DPoP. It stops when stdin closes.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/wasm/internal/oidctest"
)

func main() {
	static := flag.String("static", ".", "directory served by the app server")
	clientID := flag.String("client", "test-spa", "client id")
	ttl := flag.Duration("ttl", 5*time.Minute, "access token lifetime")
	demo := flag.String("demo", "", "directory of a built single-page app served on its own port (optional)")
	dpop := flag.Bool("dpop", false, "advertise DPoP (RFC 9449, ES256) in discovery")
	flag.Parse()
	if err := run(*static, *demo, *clientID, *ttl, *dpop); err != nil {
		slog.Error("testissuer", "err", err)
		os.Exit(1)
	}
}

func run(static, demo, clientID string, ttl time.Duration, dpop bool) error {
	issuerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	issuer := "http://" + issuerLn.Addr().String()
	app := "http://" + appLn.Addr().String()
	printed := map[string]string{"issuer": issuer, "app": app}
	redirects, postLogout, origins := []string{app + "/testapp/callback"}, []string{app + "/testapp/"}, []string{app}
	if demo != "" {
		demoLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		demoURL := "http://" + demoLn.Addr().String()
		printed["demo"] = demoURL
		redirects = append(redirects, demoURL+"/callback")
		postLogout = append(postLogout, demoURL+"/")
		origins = append(origins, demoURL)
		go func() { _ = http.Serve(demoLn, spa(demo)) }()
	}
	srv, err := oidctest.New(oidctest.Config{
		Issuer:                 issuer,
		ClientID:               clientID,
		RedirectURIs:           redirects,
		PostLogoutRedirectURIs: postLogout,
		AllowedOrigins:         origins,
		AccessTokenTTL:         ttl,
		Users:                  map[string]string{"ada@example.com": "correct horse"},
		DPoP:                   dpop,
	})
	if err != nil {
		return err
	}
	files := http.FileServer(http.Dir(static))
	appHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The package's files as a server without versioned names would
		// send them: cached, revalidated on every load (a 304 when
		// unchanged), so the browser can reuse the compiled .wasm from its
		// code cache. The test app itself is not cached.
		if strings.HasPrefix(r.URL.Path, "/dist/") {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "no-store")
		}
		// The test app is a single page: its routes all serve index.html.
		if r.URL.Path == "/testapp/callback" || r.URL.Path == "/testapp/profile" {
			r.URL.Path = "/testapp/"
		}
		files.ServeHTTP(w, r)
	})
	go func() { _ = http.Serve(issuerLn, srv) }()
	go func() { _ = http.Serve(appLn, appHandler) }()
	if err := json.NewEncoder(os.Stdout).Encode(printed); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// spa serves the files of dir; any other path without a file extension
// (the app's routes: /profile, /callback) gets its index.html, as a
// production server of a single-page app does. The directory is read per
// request, so the app may be built after the server started.
func spa(dir string) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(path.Clean("/"+r.URL.Path)))); err != nil && path.Ext(r.URL.Path) == "" {
			r.URL.Path = "/"
		}
		files.ServeHTTP(w, r)
	})
}
