package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/broker/mfa"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// handleAuthorize is the authorization endpoint. fosite validates the
// request; a browser with a valid broker session gets its code at once,
// otherwise the request is parked as a pending login and the browser goes
// to the login page.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.newAuthorizeRequest(ctx, r)
	if err != nil {
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	if err := validateEarly(ar); err != nil {
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, err)
		return
	}
	prompt := strings.Fields(ar.GetRequestForm().Get("prompt"))
	now := time.Now().UTC().Truncate(time.Second)

	bs, user, err := s.browserSession(r)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.ErrorContext(ctx, "load browser session", "err", err)
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, serverError(err))
		return
	}
	// A federated session is re-checked upstream before it is reused
	// silently (when a check is due); one that cannot be sends the user
	// through its connector again.
	hint := ar.GetRequestForm().Get("idp_hint")
	stepUp := false // a recent session that lacks the second factor asked for
	if reusable(bs, ar.GetRequestForm(), now) {
		if s.recheckSession(ctx, bs) == nil {
			var err error
			if stepUp, err = s.needsStepUp(ctx, bs, ar.GetRequestForm(), ar.GetClient().GetID()); err != nil {
				s.log.ErrorContext(ctx, "step-up: second factors", "err", err)
				s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, serverError(err))
				return
			}
			if !stepUp {
				s.finishAuthorize(w, r, ar, user, bs, nil, now)
				return
			}
		} else if hint == "" {
			hint = bs.IDP
		}
	}
	if slices.Contains(prompt, "none") {
		if stepUp {
			s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, fosite.ErrInteractionRequired.WithHint("The request asks for a second factor the session has not used (prompt=none)."))
			return
		}
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, fosite.ErrLoginRequired.WithHint("The user is not logged in to the broker (prompt=none)."))
		return
	}

	loginID := randomToken()
	p := &storage.PendingLogin{
		ID:             hashToken(loginID),
		BrowserBinding: s.browserBinding(w, r),
		ClientID:       ar.GetClient().GetID(),
		Form:           ar.GetRequestForm().Encode(),
		RequestedAt:    now,
		ExpiresAt:      now.Add(s.cfg.PendingLoginLifetime),
	}
	if stepUp {
		// The session counts as the first step: on to the second.
		if err := s.cfg.Store.CreatePendingLogin(ctx, p); err != nil {
			s.log.ErrorContext(ctx, "create pending login", "err", err)
			s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, serverError(err))
			return
		}
		s.afterFirstFactor(w, r, loginID, p, user, bs.AMR)
		return
	}
	target := s.url(pathLogin) + "?login=" + url.QueryEscape(loginID)
	if hint != "" {
		if o, ok := s.loginOption(hint); ok {
			var err error
			if target, err = s.startOption(w, r, o, loginID, p); err != nil {
				s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, fosite.ErrLoginRequired.WithHintf("The sign-in method %q cannot confirm a new sign-in (prompt=login or max_age).", o.ID))
				return
			}
		}
	}
	if err := s.sessions.CreatePendingLogin(ctx, p); err != nil {
		s.log.ErrorContext(ctx, "create pending login", "err", err)
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, serverError(err))
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// startOption starts the login option an idp_hint named for the pending
// login p (not yet stored) and says where the browser goes next. It fails
// only when the option cannot give the new sign-in the request asks for
// (ErrLoginRequired).
func (s *Server) startOption(w http.ResponseWriter, r *http.Request, o LoginOption, loginID string, p *storage.PendingLogin) (string, error) {
	if o.Start == nil {
		return o.URL(loginID), nil
	}
	start := *p
	target, err := o.Start(w, r, loginID, &start)
	if errors.Is(err, ErrLoginRequired) {
		return "", err
	}
	if err != nil {
		// URL tries again, and shows the user what went wrong if it fails.
		s.log.WarnContext(r.Context(), "start login option", "option", o.ID, "err", err)
		return o.URL(loginID), nil
	}
	*p = start
	return target, nil
}

// validateEarly checks what fosite only checks in NewAuthorizeResponse
// (PKCE, prompt, nonce), so a request that is bound to fail does so before
// the user is asked to log in.
func validateEarly(ar fosite.AuthorizeRequester) error {
	form := ar.GetRequestForm()
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && ar.GetClient().IsPublic():
		return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge (PKCE with S256) when performing the authorize code flow.")
	case challenge != "" && method != "S256":
		return fosite.ErrInvalidRequest.WithHint("The code_challenge_method must be S256; plain is not allowed.")
	}
	prompt := strings.Fields(form.Get("prompt"))
	for _, p := range prompt {
		switch p {
		case "none", "login":
		case "consent":
			// The broker has no consent page: clients are registered by
			// the operator. Refused, not ignored (OpenID Connect Core
			// §3.1.2.1: the server must not pretend it asked).
			return fosite.ErrConsentRequired.WithHint("The broker does not ask for consent (prompt=consent is not supported).")
		case "select_account":
			return errAccountSelectionRequired.WithHint("The broker does not offer account selection (prompt=select_account is not supported); use prompt=login to sign in as another user.")
		default:
			return fosite.ErrInvalidRequest.WithHintf("Unknown prompt value %q.", p)
		}
	}
	if slices.Contains(prompt, "none") && len(prompt) > 1 {
		return fosite.ErrInvalidRequest.WithHint("prompt=none must not be combined with other values.")
	}
	if v := form.Get("max_age"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			return fosite.ErrInvalidRequest.WithHint("max_age must be a non-negative integer.")
		}
	}
	if nonce := form.Get("nonce"); nonce != "" && len(nonce) < 8 {
		return fosite.ErrInsufficientEntropy.WithHint("The nonce must be at least 8 characters long.")
	}
	if err := checkDPoPJKT(form.Get("dpop_jkt")); err != nil {
		return err
	}
	return requestResources(ar)
}

// errAccountSelectionRequired is OpenID Connect Core §3.1.2.6's error for
// a prompt=select_account the server cannot honour (fosite has none).
var errAccountSelectionRequired = &fosite.RFC6749Error{
	ErrorField:       "account_selection_required",
	DescriptionField: "The End-User is required to select a session at the Authorization Server.",
	CodeField:        http.StatusBadRequest,
}

// writeAuthorizeError answers a failed authorization request: with a
// redirect (carrying state) when the client and redirect_uri are known and
// valid, otherwise with an error page — never a redirect to an unverified URI.
func (s *Server) writeAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	if down := outage(err); down != nil {
		s.log.WarnContext(r.Context(), "authorization request failed: database unavailable", "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable, "Sign-in is unavailable",
			"The sign-in service cannot reach its database right now. Please try again in a moment.")
		return
	}
	if ar != nil && ar.IsRedirectURIValid() && redirectMatches(ar) {
		s.provider.WriteAuthorizeError(r.Context(), s.withIssuer(w), ar, err)
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	s.log.InfoContext(r.Context(), "authorization request refused", "error", rfc.ErrorField, "hint", rfc.HintField)
	msg := "The application sent an invalid sign-in request."
	if rfc.HintField != "" {
		msg += " " + rfc.HintField
	}
	s.renderError(w, r, http.StatusBadRequest, "Invalid sign-in request", msg)
}

// PendingLogin returns the pending login named by the login id of the login
// URL, checking that it belongs to this browser. Connectors use it to record
// their upstream state (then storage.UpdatePendingLogin).
func (s *Server) PendingLogin(r *http.Request, loginID string) (*storage.PendingLogin, error) {
	if loginID == "" {
		return nil, fmt.Errorf("pending login: %w", storage.ErrNotFound)
	}
	p, err := s.sessions.GetPendingLogin(r.Context(), hashToken(loginID))
	if err != nil {
		return nil, fmt.Errorf("pending login: %w", err)
	}
	if b := s.currentBinding(r); b == "" || b != p.BrowserBinding {
		return nil, fmt.Errorf("pending login belongs to another browser: %w", storage.ErrNotFound)
	}
	return p, nil
}

// RecordUpstreamState records in the pending login loginID of this browser
// that the user went to connector connectorID with the state whose hash is
// stateHash, and the connector's state (see
// storage.Store.RecordUpstreamState). It fails with an error wrapping
// storage.ErrNotFound when the pending login is gone, expired or another
// browser's.
func (s *Server) RecordUpstreamState(r *http.Request, loginID, connectorID, stateHash string, connectorState []byte) error {
	if loginID == "" {
		return fmt.Errorf("pending login: %w", storage.ErrNotFound)
	}
	err := s.sessions.RecordUpstreamState(r.Context(), hashToken(loginID), s.currentBinding(r), connectorID, stateHash, connectorState)
	if err != nil {
		return fmt.Errorf("pending login: %w", err)
	}
	return nil
}

// ClaimUpstreamState uses up the upstream state of the pending login
// loginID of this browser and returns the pending login (see
// storage.Store.ClaimUpstreamState): an error wrapping storage.ErrNotFound
// when the state is not the one recorded for connectorID, was used
// already, or the pending login is gone, expired or another browser's.
func (s *Server) ClaimUpstreamState(r *http.Request, loginID, connectorID, stateHash string) (*storage.PendingLogin, error) {
	if loginID == "" {
		return nil, fmt.Errorf("pending login: %w", storage.ErrNotFound)
	}
	p, err := s.sessions.ClaimUpstreamState(r.Context(), hashToken(loginID), s.currentBinding(r), connectorID, stateHash)
	if err != nil {
		return nil, fmt.Errorf("pending login: %w", err)
	}
	return p, nil
}

// CompleteLogin finishes the pending login loginID (the id in the login URL)
// for userID, authenticated by idp ("local" or a connector id) with the
// methods amr (e.g. ["pwd"]): it starts the broker session and answers the
// original authorization request (a redirect to the client). It writes the
// whole response, an error page included.
func (s *Server) CompleteLogin(w http.ResponseWriter, r *http.Request, loginID, userID, idp string, amr []string) {
	s.completeLogin(w, r, loginID, nil, userID, nil, idp, amr, nil)
}

// CompleteLoginAs is CompleteLogin for a caller that has read the pending
// login p (of this browser: see ClaimUpstreamState) and loaded the user in
// this request: neither is read again (whether the user may log in is
// checked on the given copy), and the pending login is used up in the
// grant's transaction, so that a login is written in one commit. Of
// concurrent completions exactly one still gets through. The caller's own
// writes for this login (also) run in that transaction too, after the
// broker's: they are made when the user logged in, whether or not the
// authorization request is then granted, and not when another request
// completed the login first.
func (s *Server) CompleteLoginAs(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin, user *storage.User, idp string, amr []string, also ...func(ctx context.Context) error) {
	s.completeLogin(w, r, loginID, p, user.ID, user, idp, amr, nil, also...)
}

// completeLogin is CompleteLogin, CompleteLoginAs and
// CompleteFederatedLogin: read is the pending login as the caller read it
// (nil: take it now), user the user (nil: load it), up the upstream login
// (nil for a local one).
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, loginID string, read *storage.PendingLogin, userID string, user *storage.User, idp string, amr []string, up *UpstreamLogin, also ...func(ctx context.Context) error) {
	ctx := r.Context()
	// One statement checks that the pending login is this browser's and
	// uses it up: of concurrent completions exactly one gets it.
	id, binding := hashToken(loginID), s.currentBinding(r)
	take := func(ctx context.Context) error {
		return s.sessions.UsePendingLogin(ctx, id, binding)
	}
	p := read
	if p == nil {
		var err error
		if p, err = s.sessions.TakeBoundPendingLogin(ctx, id, binding); err != nil {
			s.renderExpiredLogin(w, r, err)
			return
		}
		take = nil
	}
	// spend uses the pending login up on a way out without a grant, as
	// the grant would have.
	spend := func() bool {
		if take == nil {
			return true
		}
		if err := take(ctx); err != nil {
			s.renderExpiredLogin(w, r, err)
			return false
		}
		return true
	}
	if user == nil {
		var err error
		user, err = s.sessions.GetUser(ctx, userID)
		if errors.Is(err, storage.ErrNotFound) {
			s.renderError(w, r, http.StatusForbidden, "Sign-in not allowed", "This account cannot sign in.")
			return
		}
		if err != nil {
			s.log.ErrorContext(ctx, "complete login: load user", "user", userID, "err", err)
			s.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.")
			return
		}
	}
	if !user.Active || user.Disabled {
		if spend() {
			s.renderError(w, r, http.StatusForbidden, "Sign-in not allowed", "This account cannot sign in.")
		}
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	if now.Before(p.RequestedAt) {
		now = p.RequestedAt
	}
	// The broker session (and, for CompleteLoginAs, the pending login's
	// use) is written in the grant's transaction and the session's cookie
	// set with the answer.
	ns := s.prepareSession(r, userID, idp, amr, now)
	ns.take, ns.also = take, also
	if p.ClientID == "" {
		// A sign-in to the broker itself (SignInURL): no application,
		// no grant, back to the broker's page.
		s.finishSignIn(w, r, p, ns)
		return
	}
	var stale error // a federated login older than the request asked for
	if up != nil {
		form, _ := url.ParseQuery(p.Form) // the broker stored it from url.Values.Encode
		stale = upstreamAuthTime(ns.row, up, form, p.RequestedAt, now)
	}

	// Rebuild the original authorization request from its stored form and
	// let fosite validate it again.
	orig := r.Clone(ctx)
	orig.Method = http.MethodGet
	orig.URL = &url.URL{Path: s.basePath + pathAuth, RawQuery: p.Form}
	orig.Body = http.NoBody
	orig.ContentLength = 0
	orig.Form, orig.PostForm, orig.MultipartForm = nil, nil, nil
	orig.Header = orig.Header.Clone()
	orig.Header.Del("Content-Type")
	ar, err := s.newAuthorizeRequest(ctx, orig)
	if err != nil {
		s.keepSession(w, r, ns)
		s.writeAuthorizeError(w, r, ar, err)
		return
	}
	if ar.GetClient().GetID() != p.ClientID {
		s.keepSession(w, r, ns)
		s.renderError(w, r, http.StatusBadRequest, "Invalid sign-in request", "The sign-in request does not match.")
		return
	}
	if err := requestResources(ar); err != nil {
		s.keepSession(w, r, ns)
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, err)
		return
	}
	if stale != nil {
		// The user did sign in (upstream, at the time it says): keep
		// that session, but it is not the new sign-in asked for.
		s.log.InfoContext(ctx, "federated login refused: not a new enough sign-in", "connector", idp, "err", stale)
		s.keepSession(w, r, ns)
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, fosite.ErrLoginRequired.WithHint("The identity provider did not confirm the new sign-in the request asked for."))
		return
	}
	if req, ok := ar.(*fosite.AuthorizeRequest); ok {
		req.RequestedAt = p.RequestedAt
	}
	s.finishAuthorize(w, r, ar, user, ns.row, ns, p.RequestedAt)
}

// keepSession writes the session of a login whose authorization request
// then failed (using the pending login up): the user did log in, so the
// browser keeps a broker session. A failure is logged; the request's error
// is answered either way.
func (s *Server) keepSession(w http.ResponseWriter, r *http.Request, ns *loginSession) {
	if err := ns.write(r.Context(), s.sessions); err != nil {
		if !ns.gone {
			s.log.ErrorContext(r.Context(), "complete login: create browser session", "err", err)
		}
		return
	}
	s.setCookie(w, sessionCookie, ns.cookie, s.cfg.SessionLifetime)
}

func (s *Server) renderExpiredLogin(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, storage.ErrNotFound) {
		s.log.ErrorContext(r.Context(), "load pending login", "err", err)
		s.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.")
		return
	}
	s.renderError(w, r, http.StatusBadRequest, "Sign-in expired",
		"This sign-in link has expired or was already used, or your browser does not accept cookies from this site. Go back to the application and sign in again.",
		s.StartLinks()...)
}

// finishAuthorize grants the request for the user of the broker session and
// sends the authorization response. A login passes the session it starts
// as ns (bs is ns.row): it is written in the grant's transaction and its
// cookie set with the answer; nil for an existing session.
func (s *Server) finishAuthorize(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, user *storage.User, bs *storage.BrowserSession, ns *loginSession, requestedAt time.Time) {
	ctx := r.Context()
	client := ar.GetClient()
	if s.withoutRequiredMFA(ctx, bs, client.GetID()) {
		s.log.InfoContext(ctx, "login refused: the client requires a second factor the session does not have", "client", client.GetID(), "idp", bs.IDP)
		if ns != nil {
			s.keepSession(w, r, ns) // the user did sign in upstream
		}
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, fosite.ErrAccessDenied.WithHint("The client requires a second factor, and this sign-in did not use one (for a federated sign-in: the identity provider reported none in amr)."))
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope) // fosite checked them against the client's scopes
	}
	grantAudience(ar, client)

	sess := newSession()
	sess.Subject = user.ID
	sess.ClientID = client.GetID()
	claims := sess.Claims
	claims.Subject = user.ID
	claims.AuthTime = bs.AuthTime.UTC()
	claims.RequestedAt = requestedAt.UTC()
	claims.AuthenticationMethodsReferences = bs.AMR
	claims.AuthenticationContextClassReference = mfa.ACR(bs.AMR)
	claims.Extra = idTokenClaims(user, ar.GetGrantedScopes())
	if bs.IDP != "" {
		claims.Extra["idp"] = bs.IDP
	}
	sess.IDPSubject = bs.IDPSubject
	sess.DPoPJKT = ar.GetRequestForm().Get("dpop_jkt") // RFC 9449 section 10: binds the code

	unit, endUnit := s.tokens.WithUnit(ctx)
	defer endUnit()
	if ns != nil {
		if err := s.tokens.Record(unit, func(ctx context.Context) error { return ns.write(ctx, s.sessions) }); err != nil {
			s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, serverError(err))
			return
		}
	}
	var resp fosite.AuthorizeResponder
	err := s.tokens.Run(unit, func(ctx context.Context) error {
		var err error
		resp, err = s.provider.NewAuthorizeResponse(ctx, ar, sess)
		return err
	})
	if ns != nil && ns.gone {
		// Another request completed this login first.
		s.renderExpiredLogin(w, r, storage.ErrNotFound)
		return
	}
	if down := outage(err); down != nil {
		err = down // nothing was written: the client may retry
	}
	if err != nil {
		s.logGrantError(ctx, "authorize", err)
		s.provider.WriteAuthorizeError(ctx, s.withIssuer(w), ar, err)
		return
	}
	if ns != nil {
		s.setCookie(w, sessionCookie, ns.cookie, s.cfg.SessionLifetime)
	}
	s.provider.WriteAuthorizeResponse(ctx, s.withIssuer(w), ar, resp)
}

// grantAudience grants the audiences the client asked for (fosite checked
// them against the client's) or, when it asked for none, its defaults.
func grantAudience(ar fosite.Requester, client fosite.Client) {
	if len(ar.GetRequestedAudience()) > 0 {
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
		return
	}
	if c, ok := client.(*storage.Client); ok {
		for _, a := range c.DefaultAudiences {
			ar.GrantAudience(a)
		}
	}
}

// idTokenClaims are the profile and e-mail claims for the granted scopes;
// the same claims userinfo returns.
func idTokenClaims(u *storage.User, scopes fosite.Arguments) map[string]any {
	c := map[string]any{}
	if scopes.Has("profile") {
		if u.Name != "" {
			c["name"] = u.Name
		}
		if u.GivenName != "" {
			c["given_name"] = u.GivenName
		}
		if u.FamilyName != "" {
			c["family_name"] = u.FamilyName
		}
		if u.Picture != "" {
			c["picture"] = u.Picture
		}
		c["updated_at"] = u.UpdatedAt.Unix()
	}
	if scopes.Has("email") && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	return c
}
