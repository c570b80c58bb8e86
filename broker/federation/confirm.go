package federation

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/bridgekeeper/bridgekeeper/broker"
	"github.com/bridgekeeper/bridgekeeper/connectors"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// A first upstream login whose verified e-mail address belongs to an
// existing user with a password joins that user only after the person
// proves control of the account: its password, on the page askLink shows
// (like a "confirm link" step of other brokers). Without that proof,
// whoever registered the address first (perhaps not its owner: a
// pre-hijacked account) would share the user with the upstream identity.
// The person may instead go on with a new user of their own.
//
// Between the page and its answer, the upstream identity waits in the
// pending login, as its connector state, encrypted; the pending login's
// upstream state hash is that of a fresh token in the page's form, so the
// answer must come from this browser (the pending login's binding), for
// this pending login, and is used once.

// pendingLink is the upstream identity waiting for its owner's choice.
type pendingLink struct {
	UserID   string              `json:"user_id"`
	Identity connectors.Identity `json:"identity"`
}

// linkStateHash is the upstream state hash of a pending link's token. Its
// prefix keeps it apart from the hash of any upstream state.
func linkStateHash(token string) string { return "link:" + hashState(token) }

func linkAD(connectorID, loginID string) []byte {
	return []byte("bridgekeeper pending link\x00" + connectorID + "\x00" + hashState(loginID))
}

// askLink keeps the identity with the pending login and asks the person
// whether the existing account is theirs.
func (f *Federation) askLink(w http.ResponseWriter, r *http.Request, c *connector, loginID string, existing *storage.User, ident connectors.Identity) {
	ctx := r.Context()
	fail := func(err error) {
		f.log.ErrorContext(ctx, "keep pending link", "connector", c.id, "err", err)
		f.dropConnectorState(r, c, loginID)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", f.loginPageURL(loginID))
	}
	raw, err := json.Marshal(pendingLink{UserID: existing.ID, Identity: ident})
	if err != nil {
		fail(err)
		return
	}
	sealed, err := secret.Seal(f.cfg.DataKey, raw, linkAD(c.id, loginID))
	if err != nil {
		fail(err)
		return
	}
	token := rand.Text()
	if err := f.broker.RecordUpstreamState(r, loginID, c.id, linkStateHash(token), sealed); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			f.renderPendingError(w, r, err)
			return
		}
		fail(err)
		return
	}
	f.log.InfoContext(ctx, "upstream identity's e-mail belongs to an account with a password: asking for proof of control",
		"connector", c.id, "user", existing.ID)
	f.renderLink(w, r, http.StatusOK, f.linkPageOf(c, loginID, token, ident.Email, ""))
}

func (f *Federation) linkPageOf(c *connector, loginID, token, email, errMsg string) linkPage {
	return linkPage{Connector: c.name, Email: email, Action: f.linkURL(c.id), LoginID: loginID, Token: token,
		Error: errMsg, Retry: f.loginPageURL(loginID)}
}

// handleLink takes the answer of the link page: "link" with the existing
// account's password, or "new" for a user of one's own.
func (f *Federation) handleLink(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := f.connectors[mux.Vars(r)["connector"]]
	if c == nil {
		f.renderError(w, r, http.StatusNotFound, "Unknown sign-in method", "This way of signing in is not configured.", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		f.renderError(w, r, http.StatusBadRequest, "Sign-in failed", "The form could not be read.", "")
		return
	}
	loginID, token, action := r.PostForm.Get("login"), r.PostForm.Get("token"), r.PostForm.Get("action")
	p, err := f.broker.PendingLogin(r, loginID)
	if err != nil {
		f.renderPendingError(w, r, err)
		return
	}
	hash := linkStateHash(token)
	if token == "" || p.ConnectorID != c.id || subtle.ConstantTimeCompare([]byte(hash), []byte(p.UpstreamStateHash)) != 1 {
		f.log.InfoContext(ctx, "link answer that does not belong to the pending link", "connector", c.id)
		f.renderError(w, r, http.StatusBadRequest, "Sign-in could not be verified",
			"This page does not belong to the sign-in this browser started, or it was already used. Please sign in again.",
			f.loginPageURL(loginID))
		return
	}
	plain, err := secret.Open(f.cfg.DataKey, p.ConnectorState, linkAD(c.id, loginID))
	var pl pendingLink
	if err == nil {
		err = json.Unmarshal(plain, &pl)
	}
	if err != nil {
		f.log.ErrorContext(ctx, "read pending link", "connector", c.id, "err", err)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", f.loginPageURL(loginID))
		return
	}
	page := f.linkPageOf(c, loginID, token, pl.Identity.Email, "")

	var (
		user *storage.User
		amr  = pl.Identity.AMR // the upstream's, and what the user proved here
	)
	switch action {
	case "new":
	case "link":
		user, err = f.cfg.Store.GetUser(ctx, pl.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			f.renderError(w, r, http.StatusConflict, "Account no longer exists",
				"The account with this e-mail address was removed meanwhile. Please sign in again.", f.loginPageURL(loginID))
			return
		}
		if err != nil {
			f.log.ErrorContext(ctx, "load account to link", "err", err)
			f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", f.loginPageURL(loginID))
			return
		}
		pw := r.PostForm.Get("password")
		if pw == "" {
			page.Error = "Enter the password of the account."
			f.renderLink(w, r, http.StatusBadRequest, page)
			return
		}
		ok, retry, err := f.broker.CheckPassword(r, user, pw)
		switch {
		case errors.Is(err, broker.ErrTooManyAttempts):
			if retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+0.5)))
			}
			page.Error = "Too many attempts. Please wait a little and try again."
			f.renderLink(w, r, http.StatusTooManyRequests, page)
			return
		case ctx.Err() != nil:
			return // the client gave up
		case err != nil:
			f.log.ErrorContext(ctx, "link: check password", "user", user.ID, "err", err)
		}
		if !ok {
			f.log.InfoContext(ctx, "link: wrong password for the existing account", "connector", c.id, "user", user.ID)
			page.Error = "The password is incorrect."
			f.renderLink(w, r, http.StatusUnauthorized, page)
			return
		}
		amr = append(slices.Clone(amr), "pwd")
	default:
		page.Error = "Choose one of the two ways on."
		f.renderLink(w, r, http.StatusBadRequest, page)
		return
	}

	// Use the pending link up: of two answers exactly one goes on.
	claimed, err := f.broker.ClaimUpstreamState(r, loginID, c.id, hash)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			f.renderError(w, r, http.StatusBadRequest, "Sign-in could not be verified",
				"This page was already used. Please sign in again.", f.loginPageURL(loginID))
			return
		}
		f.log.ErrorContext(ctx, "claim pending link", "connector", c.id, "err", err)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", f.loginPageURL(loginID))
		return
	}
	f.dropConnectorState(r, c, loginID)
	if user != nil {
		err = f.linkConfirmed(ctx, c, user, pl.Identity)
	} else {
		var link *storage.Identity
		if link, err = f.linkOf(c.id, pl.Identity); err == nil {
			user, err = f.newUser(ctx, c, link, pl.Identity)
		}
	}
	if err != nil {
		f.log.ErrorContext(ctx, "link upstream identity", "connector", c.id, "err", err)
		f.renderError(w, r, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again.", f.loginPageURL(loginID))
		return
	}
	f.log.InfoContext(ctx, "federated login", "connector", c.id, "user", user.ID)
	f.broker.CompleteFederatedLogin(w, r, loginID, claimed, user,
		broker.UpstreamLogin{IDP: c.id, Subject: pl.Identity.Subject, AuthTime: pl.Identity.AuthTime, AMR: amr})
}

// linkConfirmed links the identity to the user whose owner proved control
// of the account.
func (f *Federation) linkConfirmed(ctx context.Context, c *connector, user *storage.User, ident connectors.Identity) error {
	link, err := f.linkOf(c.id, ident)
	if err != nil {
		return err
	}
	link.UserID = user.ID
	won, err := f.createIdentity(ctx, link)
	if err != nil {
		return err
	}
	if !won {
		// Linked meanwhile (another window of the same person): only
		// to this user is fine.
		linked, err := f.cfg.Store.GetIdentity(ctx, c.id, ident.Subject)
		if err != nil {
			return fmt.Errorf("identity linked meanwhile: %w", err)
		}
		if linked.UserID != user.ID {
			return fmt.Errorf("identity %s/%s was linked to another user meanwhile", c.id, ident.Subject)
		}
		return nil
	}
	f.log.InfoContext(ctx, "upstream identity linked to an existing user after its owner proved control (password)",
		"connector", c.id, "user", user.ID)
	return nil
}
