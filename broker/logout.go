package broker

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/bridgekeeper/bridgekeeper/internal/redirecturi"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// handleLogout is the RP-initiated logout endpoint (OpenID Connect
// RP-Initiated Logout 1.0), GET or POST: it ends the broker session and
// redirects to post_logout_redirect_uri (with state) when that URI is
// registered for the client, otherwise shows a "signed out" page.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Sign-out failed", "The sign-out request is malformed.")
		return
	}
	hint := r.Form.Get("id_token_hint")
	clientID := r.Form.Get("client_id")
	redirect := r.Form.Get("post_logout_redirect_uri")

	var hintSub string
	if hint != "" {
		sub, aud, err := s.verifyIDTokenHint(hint)
		if err != nil {
			s.log.InfoContext(ctx, "logout: invalid id_token_hint", "err", err)
			s.renderError(w, r, http.StatusBadRequest, "Sign-out failed", "The sign-out request carries an invalid ID token.")
			return
		}
		hintSub = sub
		switch {
		case clientID == "" && len(aud) == 1:
			clientID = aud[0]
		case clientID != "" && !slices.Contains(aud, clientID):
			s.renderError(w, r, http.StatusBadRequest, "Sign-out failed", "The ID token was not issued to this client.")
			return
		}
	}

	var target *url.URL
	if redirect != "" {
		if clientID == "" {
			s.renderError(w, r, http.StatusBadRequest, "Sign-out failed", "A post_logout_redirect_uri needs a client_id or an id_token_hint.")
			return
		}
		client, err := s.sessions.LookupClient(ctx, clientID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.ErrorContext(ctx, "logout: load client", "err", err)
			s.renderError(w, r, http.StatusInternalServerError, "Sign-out failed", "Something went wrong. Please try again.")
			return
		}
		if err != nil || !redirecturi.Match(client.PostLogoutRedirectURIs, redirect, false) {
			s.renderUnregisteredLogout(w, r, clientID, client, redirect)
			return
		}
		if target, err = url.Parse(redirect); err != nil {
			s.renderError(w, r, http.StatusBadRequest, "Sign-out failed", "The address to return to after sign-out is invalid.")
			return
		}
		if state := r.Form.Get("state"); state != "" {
			q := target.Query()
			q.Set("state", state)
			target.RawQuery = q.Encode()
		}
	}

	// Without an ID token of the user signed in here, ask before ending the
	// session (RP-Initiated Logout 1.0, section 2): a link on another site
	// must not sign the user out silently. The confirmation is our own
	// form, so its POST must be same-origin.
	bs, user, err := s.browserSession(r)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.ErrorContext(ctx, "logout: load browser session", "err", err)
	}
	if bs != nil && hintSub != bs.UserID {
		confirmed := r.Method == http.MethodPost && r.PostForm.Get("confirm") == "yes" && s.csrf.Check(r) == nil
		if !confirmed {
			data := pageData{Title: "Sign out", Action: s.url(pathLogout), Email: user.Email}
			for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
				if v := r.Form.Get(k); v != "" {
					data.Hidden = append(data.Hidden, hiddenField{Name: k, Value: v})
				}
			}
			s.renderPage(w, r, http.StatusOK, "logout_confirm.html", data)
			return
		}
	}

	if err := s.endSession(w, r); err != nil {
		s.log.ErrorContext(ctx, "logout", "err", err)
		s.renderError(w, r, http.StatusInternalServerError, "Sign-out failed", "Something went wrong. Please try again.")
		return
	}
	if target != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target.String(), http.StatusSeeOther)
		return
	}
	s.renderPage(w, r, http.StatusOK, "logged_out.html", pageData{Title: "Signed out"})
}

// verifyIDTokenHint checks an id_token_hint: signed by one of our published
// keys (chosen by kid, so a retired key still works), issued by us. An
// expired hint is fine for logout. It returns the token's subject and
// audience.
func (s *Server) verifyIDTokenHint(raw string) (string, []string, error) {
	tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return "", nil, fmt.Errorf("parse: %w", err)
	}
	if len(tok.Headers) != 1 {
		return "", nil, errors.New("expected one signature")
	}
	if typ, _ := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string); typ == "at+jwt" {
		return "", nil, errors.New("an access token is not an ID token")
	}
	kid := tok.Headers[0].KeyID
	pub, alg, ok := s.keys.PublicKey(kid)
	if !ok {
		return "", nil, fmt.Errorf("unknown key %q", kid)
	}
	if tok.Headers[0].Algorithm != alg {
		return "", nil, fmt.Errorf("algorithm %s does not match key %q", tok.Headers[0].Algorithm, kid)
	}
	var claims josejwt.Claims
	if err := tok.Claims(pub, &claims); err != nil {
		return "", nil, fmt.Errorf("verify: %w", err)
	}
	if claims.Issuer != s.cfg.Issuer {
		return "", nil, fmt.Errorf("issuer %q is not ours", claims.Issuer)
	}
	return claims.Subject, claims.Audience, nil
}

// renderUnregisteredLogout answers a post_logout_redirect_uri the client
// has not registered. Nobody is sent to it (an open redirect otherwise);
// the page offers to sign out here and to go back to an address the client
// did register, and tells the developer how to register the URI. client
// is nil for an unknown client_id.
func (s *Server) renderUnregisteredLogout(w http.ResponseWriter, r *http.Request, clientID string, client *storage.Client, redirect string) {
	links := []PageLink{{Label: "Sign out here", URL: s.url(pathLogout)}}
	detail := fmt.Sprintf("For the developer: there is no client %q. Register it with bridgekeeper client create --id %s … --post-logout-redirect-uri %s.", clientID, clientID, redirect)
	if client != nil {
		if back := registeredOrigin(client); back != "" {
			links = append(links, PageLink{Label: "Back to the application", URL: back})
		}
		detail = fmt.Sprintf("For the developer: %q is not a post-logout redirect URI of client %q (they match exactly). Register it: bridgekeeper client create --id %s … --post-logout-redirect-uri %s (there is no update command: client delete %s first, then create it again with all its URIs).",
			redirect, clientID, clientID, redirect, clientID)
	}
	s.RenderMessage(w, r, http.StatusBadRequest, "Sign-out failed",
		"You are still signed in: the address to return to after sign-out is not registered for this application.", detail, links...)
}

// registeredOrigin is the origin (scheme://host) of the client's first
// registered post-logout or redirect http(s) URI, "" when it has none.
func registeredOrigin(c *storage.Client) string {
	for _, raw := range append(slices.Clone(c.PostLogoutRedirectURIs), c.RedirectURIs...) {
		u, err := url.Parse(raw)
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return u.Scheme + "://" + u.Host + "/"
		}
	}
	return ""
}
