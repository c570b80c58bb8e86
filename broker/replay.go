package broker

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// replayGuard is the first token endpoint handler of the code and refresh
// grants. fosite revokes a whole grant when a spent authorization code or a
// rotated refresh token is presented again, and it does so before checking
// the token's HMAC or the client presenting it: the signature half of a
// token (all a log line, a proxy or a database reader may have) in a
// request naming any client would end someone else's grant. The guard
// lets a replay reach fosite only when it is a real one:
//
//   - the token is authentic: its HMAC checks, whatever its state, else
//     invalid_grant before anything is read;
//   - a spent code or rotated refresh token presented by another client
//     than the one it was issued to is invalid_grant, nothing revoked;
//   - a refresh token rotated less than reuseGrace ago is invalid_grant,
//     nothing revoked: the loser of two concurrent refreshes (two tabs)
//     must not end the grant the winner just renewed.
//
// Everything else (a live token, an unknown one, an authentic replay by
// its own client after the grace window) is fosite's to handle. The token
// row the guard reads is the one fosite reads next: the token endpoint's
// read memo serves it, so the guard costs no database round trip.
type replayGuard struct {
	store      oauth2.CoreStorage
	hmac       *hmac.HMACStrategy
	tokens     oauth2.CoreStrategy // the signatures codes and refresh tokens are stored under
	reuseGrace time.Duration       // <= 0: every reuse is a replay
}

func (g *replayGuard) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	var (
		stored fosite.Requester
		err    error
	)
	form := req.GetRequestForm()
	switch {
	case req.GetGrantTypes().ExactOne("refresh_token"):
		token := form.Get("refresh_token")
		if err := g.authentic(ctx, token); err != nil {
			return err
		}
		stored, err = g.store.GetRefreshTokenSession(ctx, g.tokens.RefreshTokenSignature(ctx, token), nil)
	case req.GetGrantTypes().ExactOne("authorization_code"):
		token := form.Get("code")
		if err := g.authentic(ctx, token); err != nil {
			return err
		}
		stored, err = g.store.GetAuthorizeCodeSession(ctx, g.tokens.AuthorizeCodeSignature(ctx, token), nil)
	default:
		return fosite.ErrUnknownRequest
	}
	if !errors.Is(err, fosite.ErrInactiveToken) && !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		return nil // live, unknown or unreadable: fosite answers
	}
	if stored == nil || stored.GetClient() == nil || req.GetClient() == nil ||
		stored.GetClient().GetID() != req.GetClient().GetID() {
		return fosite.ErrInvalidGrant.WithHint("The authorization code or refresh token was not issued to this client.")
	}
	var rotated *storage.RotatedError
	if g.reuseGrace > 0 && errors.As(err, &rotated) {
		if since := time.Since(rotated.At); since <= g.reuseGrace {
			return fosite.ErrInvalidGrant.
				WithHint("The refresh token was used a moment ago by another request; use the refresh token that request received.").
				WithDebugf("Refresh token rotated %s ago, within the reuse grace period; nothing was revoked.", since.Round(time.Millisecond))
		}
	}
	return nil // a replay by the token's own client: fosite revokes the grant
}

// authentic refuses a token whose HMAC does not check (a made-up key part
// beside a stolen signature, or garbage).
func (g *replayGuard) authentic(ctx context.Context, token string) error {
	if err := g.hmac.Validate(ctx, token); err != nil {
		return fosite.ErrInvalidGrant.WithHint("The authorization code or refresh token is malformed or not valid.").WithWrap(err).WithDebug(err.Error())
	}
	return nil
}

func (g *replayGuard) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return fosite.ErrUnknownRequest
}

func (g *replayGuard) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (g *replayGuard) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	return req.GetGrantTypes().ExactOne("refresh_token") || req.GetGrantTypes().ExactOne("authorization_code")
}

// authenticRevocation wraps fosite's revocation handler: fosite looks a
// token up by its signature part alone, so the signature half of a token
// named with a public client's id (which anyone can send) revoked that
// client's grant. Only an authentic token — a refresh token whose HMAC
// checks, or an access token whose JWT signature verifies with one of the
// broker's keys — is looked up; anything else is an invalid token, which
// RFC 7009 section 2.2 answers with 200 and nothing revoked.
type authenticRevocation struct {
	next   fosite.RevocationHandler
	hmac   *hmac.HMACStrategy
	signer interface {
		Decode(ctx context.Context, token string) (*jwt.Token, error)
	}
}

func (a *authenticRevocation) RevokeToken(ctx context.Context, token string, hint fosite.TokenType, client fosite.Client) error {
	if a.hmac.Validate(ctx, token) != nil && !a.signedJWT(ctx, token) {
		return nil
	}
	return a.next.RevokeToken(ctx, token, hint, client)
}

// signedJWT reports whether token is a JWT signed by one of the broker's
// keys; its claims (an expired access token, say) do not matter here.
func (a *authenticRevocation) signedJWT(ctx context.Context, token string) bool {
	_, err := a.signer.Decode(ctx, token)
	if err == nil {
		return true
	}
	// Only the time checks run after the signature verified; every other
	// error (ClaimsInvalid too) may come before it.
	const timeOnly = jwt.ValidationErrorExpired | jwt.ValidationErrorIssuedAt | jwt.ValidationErrorNotValidYet
	var ve *jwt.ValidationError
	return errors.As(err, &ve) && ve.Errors != 0 && ve.Errors&^timeOnly == 0
}
