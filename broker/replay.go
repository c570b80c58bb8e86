package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// A spent authorization code or rotated refresh token presented again
// makes fosite revoke the whole grant, and fosite does so before it checks
// the token's HMAC or the client presenting it: the signature half of a
// token (all a log line, a proxy or a database reader may have) in a
// request naming any client would end someone else's grant. The token
// store (storage.TokenStore), which reports the spent token to fosite,
// reports it as not found instead (fosite answers invalid_grant and
// revokes nothing) when its HMAC does not check, when the client
// presenting it is not the one it was issued to, or when a refresh token
// was rotated less than the reuse grace ago — the loser of two concurrent
// refreshes (two tabs) must not end the grant the winner just renewed.
// Only an authentic token, presented by its own client (past the grace
// window, for a refresh token) reaches fosite's replay revocation. The
// decision is taken on the row fosite reads anyway, and the HMAC is
// checked there only for a spent token: a live one's is checked by
// fosite itself, once.

// replayAnswer words the invalid_grant fosite gives for a replay that the
// token store did not count, and for a live code or refresh token whose
// HMAC does not check (fosite calls a refresh token's forgery
// invalid_request).
func replayAnswer(err error) error {
	switch {
	case errors.Is(err, storage.ErrReuseWithinGrace):
		return fosite.ErrInvalidGrant.WithHint("The refresh token was used a moment ago by another request; use the refresh token that request received.").
			WithWrap(err).WithDebug(err.Error())
	case errors.Is(err, storage.ErrReplayByOtherClient):
		return fosite.ErrInvalidGrant.WithHint("The authorization code or refresh token was not issued to this client.").
			WithWrap(err).WithDebug(err.Error())
	case errors.Is(err, storage.ErrForgedToken), errors.Is(err, errForgedRefresh),
		errors.Is(err, fosite.ErrTokenSignatureMismatch), errors.Is(err, fosite.ErrInvalidTokenFormat):
		return fosite.ErrInvalidGrant.WithHint("The authorization code or refresh token is malformed or not valid.").
			WithWrap(err).WithDebug(err.Error())
	}
	return err
}

// errForgedRefresh marks a live refresh token whose HMAC does not check.
var errForgedRefresh = errors.New("a refresh token whose HMAC does not check")

// forgedRefreshAnswer is fosite's token strategy, except that a live
// refresh token failing its check for anything but its expiry is marked
// errForgedRefresh (fosite calls it invalid_request, whatever the cause:
// a wrong signature, or a key part that is not even base64), so that
// replayAnswer can answer invalid_grant.
type forgedRefreshAnswer struct {
	oauth2.CoreStrategy
}

func (f forgedRefreshAnswer) ValidateRefreshToken(ctx context.Context, req fosite.Requester, token string) error {
	err := f.CoreStrategy.ValidateRefreshToken(ctx, req, token)
	if err != nil && !errors.Is(err, fosite.ErrTokenExpired) {
		return fmt.Errorf("%w: %w", errForgedRefresh, err)
	}
	return err
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
