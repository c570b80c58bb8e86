package federation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// loginCookie carries the pending login id from /connect to the callback.
// Its path is the connector's callback path, so each connector has its own.
const loginCookie = "bk_fed"

// maxCookieAge bounds the login cookie even for a long pending login.
const maxCookieAge = 30 * time.Minute

// handleConnect starts the upstream login of a pending login: a fresh
// state, recorded (hashed) with the connector's state in the pending login,
// the login id in a cookie for the callback, and a redirect upstream.
func (f *Federation) handleConnect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := f.connectors[mux.Vars(r)["connector"]]
	if c == nil {
		f.renderError(w, r, http.StatusNotFound, "Unknown sign-in method", "This way of signing in is not configured.", "")
		return
	}
	loginID := r.URL.Query().Get("login")
	p, err := f.broker.PendingLogin(r, loginID)
	if err != nil {
		f.renderPendingError(w, r, err)
		return
	}
	if r.URL.Query().Get(timedOutParam) != "" {
		// An idp_hint start already waited the whole call timeout:
		// say so rather than make the user wait for it again.
		f.renderConnectorError(w, r, c, context.DeadlineExceeded, loginID)
		return
	}
	up, err := f.beginUpstream(ctx, c, p)
	if errors.Is(err, broker.ErrLoginRequired) {
		f.log.InfoContext(ctx, "upstream login refused: the connector cannot force a new sign-in", "connector", c.id)
		f.renderConnectorError(w, r, c, err, loginID)
		return
	}
	if err != nil {
		f.log.ErrorContext(ctx, "start upstream login", "connector", c.id, "err", err)
		f.renderConnectorError(w, r, c, err, loginID)
		return
	}
	if err := f.broker.RecordUpstreamState(r, loginID, c.id, up.stateHash, up.connectorState); err != nil {
		if errors.Is(err, storage.ErrNotFound) { // completed or expired meanwhile
			f.renderPendingError(w, r, err)
			return
		}
		f.log.ErrorContext(ctx, "record upstream state", "connector", c.id, "err", err)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", "")
		return
	}
	f.setCookie(w, c.id, loginID, min(time.Until(p.ExpiresAt), maxCookieAge))
	http.Redirect(w, r, up.url, http.StatusSeeOther)
}

// startLogin is the connector's broker.LoginOption.Start: for an idp_hint
// the broker stores the pending login with the upstream state at once and
// the browser goes straight upstream, without the trip through /connect.
func (f *Federation) startLogin(c *connector) func(http.ResponseWriter, *http.Request, string, *storage.PendingLogin) (string, error) {
	return func(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin) (string, error) {
		up, err := f.beginUpstream(r.Context(), c, p)
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			// The connector used up its call timeout: /connect would
			// only wait for it again. It shows the timeout page.
			f.log.WarnContext(r.Context(), "start upstream login", "connector", c.id, "err", err)
			return f.connectURL(c.id, loginID) + "&" + timedOutParam + "=1", nil
		}
		if err != nil {
			return "", err
		}
		p.ConnectorID, p.UpstreamStateHash, p.ConnectorState = c.id, up.stateHash, up.connectorState
		f.setCookie(w, c.id, loginID, min(time.Until(p.ExpiresAt), maxCookieAge))
		return up.url, nil
	}
}

// timedOutParam on a /connect URL says that the idp_hint start of the
// login timed out: /connect shows the timeout page instead of calling the
// connector again. It only chooses which error page the browser sees.
const timedOutParam = "timed_out"

// upstreamStart is a login sent to a connector: where the browser goes,
// the hash of the fresh state it carries, and the connector's own state.
type upstreamStart struct {
	url            string
	stateHash      string
	connectorState []byte
}

// beginUpstream asks the connector where to send the browser for the
// pending login p, with a fresh state.
func (f *Federation) beginUpstream(ctx context.Context, c *connector, p *storage.PendingLogin) (upstreamStart, error) {
	form, _ := url.ParseQuery(p.Form) // the broker stored it from url.Values.Encode
	state := rand.Text()
	req := connectors.LoginRequest{
		State:       state,
		CallbackURL: f.callbackURL(c.id),
		Scopes:      scopesOf(form),
		LoginHint:   form.Get("login_hint"),
	}
	req.ForceLogin, req.MaxAge = broker.LoginFreshness(form)
	if req.Fresh() && !canReauthenticate(c.conn) {
		// The connector would let the upstream answer from a session of
		// its own, of any age: refuse rather than claim a new sign-in.
		return upstreamStart{}, fmt.Errorf("connector %s: %w", c.id, broker.ErrLoginRequired)
	}
	resp, err := c.conn.LoginURL(ctx, req)
	if err != nil {
		return upstreamStart{}, err
	}
	if u, err := url.Parse(resp.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// It becomes the browser's redirect: only a web URL may leave.
		return upstreamStart{}, fmt.Errorf("connector %s: LoginURL answered a URL that is not an absolute http(s) URL", c.id)
	}
	return upstreamStart{url: resp.URL, stateHash: hashState(state), connectorState: resp.ConnectorState}, nil
}

// handleCallback takes the upstream's answer. It accepts only the state
// this browser started, once, while the pending login lasts; then the
// connector turns the answer into an identity, which is linked to a user,
// and the broker completes the login.
func (f *Federation) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := f.connectors[mux.Vars(r)["connector"]]
	if c == nil {
		f.renderError(w, r, http.StatusNotFound, "Unknown sign-in method", "This way of signing in is not configured.", "")
		return
	}
	req := connectors.CallbackRequest{Query: r.URL.Query()}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			f.renderError(w, r, http.StatusBadRequest, "Sign-in failed", "The answer of the identity provider could not be read.", "")
			return
		}
		req.Form = r.PostForm
	}
	state := req.Query.Get("state")
	if req.Form != nil && req.Form.Get("state") != "" {
		state = req.Form.Get("state")
	}

	ck, err := f.cookies.Get(r, f.loginCookieName(c.id))
	if err != nil || ck.Value == "" {
		f.log.InfoContext(ctx, "upstream callback without a login cookie", "connector", c.id)
		f.renderError(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in was not started in this browser, or it has expired. Go back to the application and sign in again.", "")
		return
	}
	loginID := ck.Value
	// Use the state up before the connector sees the answer: of two
	// callbacks with the same state, exactly one gets through. One
	// statement checks the browser, connector, state and expiry and
	// clears the state; only when it finds nothing is the pending login
	// read, to tell the user what went wrong.
	var p *storage.PendingLogin
	if state != "" {
		p, err = f.broker.ClaimUpstreamState(r, loginID, c.id, hashState(state))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			f.log.ErrorContext(ctx, "claim upstream state", "connector", c.id, "err", err)
			f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", "")
			return
		}
	}
	if p == nil {
		f.refuseCallback(w, r, c, loginID, state)
		return
	}
	f.clearCookie(w, c.id)

	req.ConnectorState, req.CallbackURL = p.ConnectorState, f.callbackURL(c.id)
	ident, err := c.conn.HandleCallback(ctx, req)
	if err != nil {
		f.log.WarnContext(ctx, "upstream login failed", "connector", c.id, "err", err)
		f.dropConnectorState(r, c, loginID)
		f.renderConnectorError(w, r, c, err, loginID)
		return
	}
	user, record, err := f.knownUser(ctx, c.id, ident)
	var confirm *storage.User
	if err == nil && user == nil {
		user, confirm, err = f.userFor(ctx, c, ident)
	}
	if err == nil && confirm != nil {
		f.askLink(w, r, c, loginID, confirm, ident)
		return
	}
	if err != nil {
		f.log.ErrorContext(ctx, "link upstream identity", "connector", c.id, "err", err)
		f.dropConnectorState(r, c, loginID)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", f.loginPageURL(loginID))
		return
	}
	f.log.InfoContext(ctx, "federated login", "connector", c.id, "user", user.ID)
	var also []func(context.Context) error
	if record != nil {
		also = append(also, record)
	}
	f.broker.CompleteFederatedLogin(w, r, loginID, p, user,
		broker.UpstreamLogin{IDP: c.id, Subject: ident.Subject, AuthTime: ident.AuthTime, AMR: ident.AMR}, also...)
}

// canReauthenticate reports whether a connector honours ForceLogin and
// MaxAge (connectors.ReauthConnector).
func canReauthenticate(c connectors.Connector) bool {
	rc, ok := c.(connectors.ReauthConnector)
	return ok && rc.CanReauthenticate()
}

// dropConnectorState clears the connector state (nonce, PKCE verifier) of
// a pending login whose upstream login failed after its state was claimed:
// the pending login stays for another try from the login page, the spent
// state's secrets do not. (A login that succeeds deletes the pending login.)
// A failure is logged only.
func (f *Federation) dropConnectorState(r *http.Request, c *connector, loginID string) {
	err := f.broker.RecordUpstreamState(r, loginID, c.id, "", nil)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		f.log.WarnContext(r.Context(), "clear connector state", "connector", c.id, "err", err)
	}
}

// refuseCallback answers a callback whose state could not be claimed,
// saying why: the pending login is gone, expired or another browser's;
// the state is not the one this browser's pending login sent upstream; or
// it was (just) used.
func (f *Federation) refuseCallback(w http.ResponseWriter, r *http.Request, c *connector, loginID, state string) {
	ctx := r.Context()
	p, err := f.broker.PendingLogin(r, loginID)
	if err != nil {
		f.renderPendingError(w, r, err)
		return
	}
	if state == "" || p.ConnectorID != c.id || p.UpstreamStateHash == "" ||
		subtle.ConstantTimeCompare([]byte(hashState(state)), []byte(p.UpstreamStateHash)) != 1 {
		f.log.InfoContext(ctx, "upstream callback with a state this browser did not start", "connector", c.id)
		f.renderError(w, r, http.StatusBadRequest, "Sign-in could not be verified",
			"This answer does not belong to the sign-in this browser started, or it was already used. Please sign in again.",
			f.loginPageURL(loginID))
		return
	}
	// The state matches but could not be claimed: another callback with
	// it got there between the two statements.
	f.log.InfoContext(ctx, "upstream state replayed", "connector", c.id)
	f.renderError(w, r, http.StatusBadRequest, "Sign-in could not be verified",
		"This answer was already used. Please sign in again.", f.loginPageURL(loginID))
}

// scopesOf says what the broker's client asked for, for the connector.
func scopesOf(form url.Values) connectors.Scopes {
	scopes := strings.Fields(form.Get("scope"))
	return connectors.Scopes{
		OfflineAccess: slices.Contains(scopes, "offline_access") || slices.Contains(scopes, "offline"),
		Groups:        slices.Contains(scopes, "groups"),
	}
}

func hashState(state string) string {
	h := sha256.Sum256([]byte(state))
	return hex.EncodeToString(h[:])
}

func (f *Federation) cookiePath(connectorID string) string {
	return f.basePath + pathCallback + connectorID
}

func (f *Federation) setCookie(w http.ResponseWriter, connectorID, value string, maxAge time.Duration) {
	f.cookies.Set(w, &http.Cookie{
		Name:   f.loginCookieName(connectorID),
		Value:  value,
		Path:   f.cookiePath(connectorID),
		MaxAge: max(int(maxAge/time.Second), 1),
	})
}

func (f *Federation) clearCookie(w http.ResponseWriter, connectorID string) {
	f.cookies.Clear(w, f.loginCookieName(connectorID), f.cookiePath(connectorID))
}

// loginCookieName is the login cookie's name for a connector: on http one
// name, scoped to each connector's callback path; on https a __Host-
// cookie has Path=/, so the connector goes into the name instead (logins
// through two connectors at once keep one cookie each).
func (f *Federation) loginCookieName(connectorID string) string {
	if f.cookies.Secure() {
		return loginCookie + "_" + connectorID
	}
	return loginCookie
}
