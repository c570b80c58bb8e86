package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// ErrLoginRequired is what a login option's Start (or a connector route)
// wraps when the authorization request asks for a new sign-in
// (prompt=login, max_age) that the option cannot vouch for: the broker
// answers login_required rather than claim a sign-in that may not have
// happened.
var ErrLoginRequired = errors.New("a new sign-in is required that this sign-in method cannot confirm")

// SessionCheck re-checks upstream the identity a federated browser session
// came from, before the broker reuses the session silently (a prompt=none
// request, or any request answered from the session). It decides itself
// whether a check is due (broker/federation: when the last one is older
// than federation.recheck_interval) and records a successful one. An error
// wrapping connectors.ErrIdentityRevoked ends every session and grant of
// that identity (EndUpstreamIdentity); any other error (the upstream is
// down, or the identity cannot be re-checked) means the session is not
// reused silently: the user goes through the upstream again.
type SessionCheck func(ctx context.Context, bs *storage.BrowserSession) error

// UpstreamLogin describes a federated login for CompleteFederatedLogin.
type UpstreamLogin struct {
	// IDP is the connector id.
	IDP string
	// Subject is the upstream subject: the identity the session (and the
	// grants issued from it) came from.
	Subject string
	// AuthTime is when the user authenticated upstream, as the upstream
	// says (connectors.Identity.AuthTime); zero when it does not say.
	AuthTime time.Time
	// AMR lists the methods the upstream reported (connectors.Identity.AMR,
	// checked by connectors.CheckAMR), then those the user proved at the
	// broker besides the upstream login ("pwd" when linking asked for the
	// account's password). A second factor among them makes the session's
	// acr ACRMFA (mfa.ACR); the upstream's word is all there is for that.
	AMR []string
}

// CompleteFederatedLogin is CompleteLoginAs for a login through a
// connector: the broker session records the upstream identity, and its
// auth_time is the upstream's authentication time, not the callback's. A
// request that asked for a new sign-in (prompt=login, max_age) is answered
// login_required when the upstream's time does not satisfy it.
func (s *Server) CompleteFederatedLogin(w http.ResponseWriter, r *http.Request, loginID string, p *storage.PendingLogin, user *storage.User, up UpstreamLogin, also ...func(ctx context.Context) error) {
	amr := []string{"fed"}
	for _, m := range up.AMR {
		if !slices.Contains(amr, m) {
			amr = append(amr, m)
		}
	}
	s.completeLogin(w, r, loginID, p, user.ID, user, up.IDP, amr, &up, also...)
}

// freshnessSkew is how much earlier than the authorization request an
// upstream sign-in may be and still count as the new sign-in prompt=login
// asked for: the clocks of the upstream and the broker differ a little.
const freshnessSkew = 5 * time.Second

// LoginFreshness is what an authorization request (its form) asks about
// the age of the sign-in: force for prompt=login or max_age=0, maxAge for
// any other max_age.
func LoginFreshness(form url.Values) (force bool, maxAge *time.Duration) {
	force = slices.Contains(strings.Fields(form.Get("prompt")), "login")
	if v := form.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n < 0:
			// validateEarly refused it
		case n == 0:
			force = true
		case n < int64(100*365*24*time.Hour/time.Second):
			d := time.Duration(n) * time.Second
			maxAge = &d
		}
	}
	return force, maxAge
}

// upstreamAuthTime sets the auth_time of a federated login's session row
// from the upstream's, checking it against the request (form, registered
// at requestedAt). It returns fosite's login_required when the request
// asked for a new sign-in the upstream's time does not show.
func upstreamAuthTime(row *storage.BrowserSession, up *UpstreamLogin, form url.Values, requestedAt, now time.Time) error {
	row.IDPSubject = up.Subject
	checked := now
	row.CheckedAt = &checked
	force, maxAge := LoginFreshness(form)
	if up.AuthTime.IsZero() {
		row.AuthTimeUnknown = true // row.AuthTime stays the callback's
		if force || maxAge != nil {
			return errors.New("the identity provider did not say when the user signed in")
		}
		return nil
	}
	at := up.AuthTime.UTC().Truncate(time.Second)
	if at.After(now) {
		at = now
	}
	switch {
	case force && at.Before(requestedAt.Add(-freshnessSkew)):
		return fmt.Errorf("a new sign-in was asked for at %s, the upstream's is from %s", requestedAt.Format(time.RFC3339), at.Format(time.RFC3339))
	case force && at.Before(requestedAt):
		at = requestedAt // within the clocks' difference
	case maxAge != nil && at.Add(*maxAge).Before(requestedAt):
		return fmt.Errorf("max_age %s, the upstream's sign-in is from %s", *maxAge, at.Format(time.RFC3339))
	}
	row.AuthTime = at
	return nil
}

// reusable reports whether the browser session bs may answer the request
// without a new sign-in.
func reusable(bs *storage.BrowserSession, form url.Values, now time.Time) bool {
	if bs == nil {
		return false
	}
	force, maxAge := LoginFreshness(form)
	switch {
	case force:
		return false
	case maxAge == nil:
		return true
	case bs.AuthTimeUnknown:
		return false // the upstream never said when the user signed in
	default:
		return !bs.AuthTime.Add(*maxAge).Before(now)
	}
}

// recheckSession runs the session re-check (Config.SessionCheck) for a
// federated session about to be reused silently. A revoked identity loses
// every session and grant (EndUpstreamIdentity). Any error means: do not
// reuse the session.
func (s *Server) recheckSession(ctx context.Context, bs *storage.BrowserSession) error {
	if bs.IDP == "" || bs.IDP == "local" {
		return nil
	}
	check := s.cfg.SessionCheck
	if check == nil {
		return nil
	}
	err := check(ctx, bs)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, connectors.ErrIdentityRevoked):
		s.log.InfoContext(ctx, "upstream identity revoked: ending its sessions and grants", "user", bs.UserID, "connector", bs.IDP, "err", err)
		if eerr := s.EndUpstreamIdentity(ctx, bs.UserID, bs.IDP, bs.IDPSubject); eerr != nil {
			s.log.ErrorContext(ctx, "end upstream identity", "user", bs.UserID, "connector", bs.IDP, "err", eerr)
		}
	default:
		s.log.InfoContext(ctx, "federated session not reused: no upstream re-check", "user", bs.UserID, "connector", bs.IDP, "err", err)
	}
	return err
}

// EndUpstreamIdentity ends what the upstream identity subject of
// connector idp gave user userID: every broker session that came from it
// and every grant (code, access and refresh tokens) issued from such a
// session, for when the upstream no longer accepts the user. An empty
// subject, and sessions or grants recorded without one, count as every
// identity of that connector. Other logins of the user (local, another
// connector) keep their sessions and grants.
func (s *Server) EndUpstreamIdentity(ctx context.Context, userID, idp, subject string) error {
	if userID == "" || idp == "" || idp == "local" {
		return fmt.Errorf("end upstream identity: user %q, connector %q", userID, idp)
	}
	var errs []error
	if err := s.sessions.DeleteIdentityBrowserSessions(ctx, userID, idp, subject); err != nil {
		errs = append(errs, err)
	}
	grants, err := s.sessions.SubjectGrants(ctx, userID)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, g := range grants {
		sess := newSession()
		if err := json.Unmarshal([]byte(g.SessionData), sess); err != nil {
			// Unreadable: end it rather than keep what may be the
			// identity's grant.
			s.log.WarnContext(ctx, "end upstream identity: unreadable grant session", "err", err)
		} else {
			gidp, _ := sess.IDTokenClaims().Extra["idp"].(string)
			if gidp != idp || (subject != "" && sess.IDPSubject != "" && sess.IDPSubject != subject) {
				continue
			}
		}
		if err := s.sessions.RevokeGrant(ctx, g.RequestID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
