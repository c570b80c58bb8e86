package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/bridgekeeper/bridgekeeper/internal/dpop"
	"github.com/bridgekeeper/bridgekeeper/internal/secret"
	"github.com/bridgekeeper/bridgekeeper/storage"
)

// DPoP (RFC 9449) at the broker, beside fosite's token endpoint:
//
//   - handleToken verifies the request's DPoP proof (tokenProof) before
//     fosite sees the request, and puts it in the context;
//   - dpopBinding, a token endpoint handler after fosite's, binds the
//     tokens being issued to the proof's key (the access token's cnf.jkt,
//     token_type DPoP) and refuses a grant bound to another key (a code
//     bound by dpop_jkt, a public client's refresh token) or a client that
//     requires DPoP sending none;
//   - /userinfo accepts Authorization: DPoP with a proof and refuses a
//     bound token sent as Bearer (resourceProof); introspection reports
//     cnf (dpopIntrospection).
//
// Proofs' jtis go to the database (storage.ClaimDPoPProof), so every
// replica refuses a proof used at another: a token request's with the
// grant's writes, in its transaction (claimProof), /userinfo's at once. Server nonces, when on, are
// stateless (an HMAC of the time window under the system secret), so every
// replica issues and accepts the same ones.

// DefaultDPoPProofMaxAge is how old a proof's iat may be by default.
const DefaultDPoPProofMaxAge = dpop.DefaultMaxAge

// dpopNoncePeriod is how often the server nonce changes; a nonce is
// accepted for one to two periods.
const dpopNoncePeriod = time.Minute

// dpopState is the broker's proof verifiers and, when nonces are on, the
// nonces it hands out.
type dpopState struct {
	// token checks token requests' proofs; their jtis are claimed with
	// the grant's writes (claimProof).
	token *dpop.Verifier
	// resource checks /userinfo's proofs and claims their jtis at once.
	resource *dpop.Verifier
	nonces   *dpop.Nonces // nil: nonces off
	store    dpopProofs
}

func newDPoPState(cfg Config) *dpopState {
	st := &dpopState{store: cfg.Store}
	if cfg.DPoPNonce {
		st.nonces = dpop.NewNonces(cfg.Secret.Derive(secret.PurposeDPoPNonce), dpopNoncePeriod)
	}
	verifier := func(replay dpop.ReplayCache) *dpop.Verifier {
		v := &dpop.Verifier{Algorithms: dpop.DefaultAlgorithms, MaxAge: cfg.DPoPProofMaxAge, Replay: replay}
		if st.nonces != nil {
			v.Nonce = st.nonces.Check
		}
		return v
	}
	st.token, st.resource = verifier(nil), verifier(dpopReplayCache{store: cfg.Store})
	return st
}

// dpopAlgorithms are the proof algorithms the broker accepts, for
// discovery's dpop_signing_alg_values_supported and the algs of a DPoP
// challenge.
func dpopAlgorithms() []string {
	return (&dpop.Verifier{Algorithms: dpop.DefaultAlgorithms}).AllowedAlgorithms()
}

// dpopReplayCache is the verifier's replay cache in the database.
type dpopReplayCache struct{ store dpopProofs }

func (c dpopReplayCache) Claim(ctx context.Context, key string, expires time.Time) error {
	err := c.store.ClaimDPoPProof(ctx, key, expires)
	if errors.Is(err, storage.ErrProofReplayed) {
		return dpop.ErrReplay
	}
	return err
}

// dpopProofKey is the context key of a token request's verified proof.
type dpopProofKey struct{}

func proofFrom(ctx context.Context) *dpop.Proof {
	p, _ := ctx.Value(dpopProofKey{}).(*dpop.Proof)
	return p
}

// tokenProof verifies the DPoP proof of a token request, if it has one,
// and returns the context carrying it. When nonces are on every answer of
// the token endpoint carries the current one (DPoP-Nonce).
func (s *Server) tokenProof(ctx context.Context, w http.ResponseWriter, r *http.Request) (context.Context, error) {
	if s.dpop.nonces != nil {
		w.Header().Set(dpop.NonceHeader, s.dpop.nonces.Current())
	}
	if len(r.Header.Values(dpop.HeaderName)) == 0 {
		return ctx, nil
	}
	raw, err := dpop.FromHeader(r.Header)
	var p *dpop.Proof
	if err == nil {
		p, err = s.dpop.token.Verify(ctx, raw, dpop.Request{Method: r.Method, URL: s.url(pathToken)})
	}
	if err != nil {
		return ctx, dpopTokenError(err)
	}
	return context.WithValue(ctx, dpopProofKey{}, p), nil
}

// claimProof records the jti of the token request's proof among the
// request's writes (ctx's unit, Server.tokens): it lands in the grant's
// transaction (SQLite's group commit, Postgres' one transaction), so a DPoP
// token request costs no write of its own. A proof used before fails that
// transaction — nothing is issued, rotated or spent — and is answered
// invalid_dpop_proof (dpopReplayAnswer). A refused grant's writes land too
// (handleToken), so its proof is spent as well.
func (s *Server) claimProof(ctx context.Context) {
	p := proofFrom(ctx)
	if p == nil {
		return
	}
	key, until := p.ReplayKey(), s.dpop.token.ReplayUntil(p)
	_ = s.tokens.Record(ctx, func(ctx context.Context) error {
		return s.dpop.store.ClaimDPoPProof(ctx, key, until)
	})
}

// dpopReplayAnswer turns a grant that failed on its proof's claim into
// RFC 9449's answer.
func dpopReplayAnswer(err error) error {
	if errors.Is(err, storage.ErrProofReplayed) {
		return dpopTokenError(&dpop.Error{Code: dpop.CodeInvalidProof, Reason: dpop.ErrReplay})
	}
	return err
}

// dpopTokenError is the token endpoint's answer to a refused proof: RFC
// 9449's error code with status 400 (§5, §8); a failing replay cache is
// temporarily_unavailable.
func dpopTokenError(err error) error {
	var pe *dpop.Error
	if !errors.As(err, &pe) {
		return fosite.ErrTemporarilyUnavailable.WithHint("The DPoP proof could not be checked; try again.").WithWrap(err).WithDebug(err.Error())
	}
	return &fosite.RFC6749Error{ErrorField: pe.Code, DescriptionField: dpopDescription(pe), CodeField: http.StatusBadRequest}
}

func dpopDescription(pe *dpop.Error) string {
	if pe.Code == dpop.CodeUseNonce {
		return "Authorization server requires nonce in DPoP proof."
	}
	return "The DPoP proof is invalid: " + pe.Description() + "."
}

// errDPoPRequired answers a token request without a proof from a client
// that requires DPoP.
var errDPoPRequired = &fosite.RFC6749Error{
	ErrorField:       dpop.CodeInvalidProof,
	DescriptionField: "This client must send a DPoP proof with its token requests.",
	CodeField:        http.StatusBadRequest,
}

// dpopBinding is the token endpoint handler that binds tokens to the
// request's DPoP key. It runs after fosite's handlers, which have restored
// the grant's session (the code's, or the refresh token's).
type dpopBinding struct{}

func (dpopBinding) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	sess, ok := req.GetSession().(*session)
	if !ok {
		return fosite.ErrServerError.WithDebug("dpop: unexpected session")
	}
	required := false
	if c, ok := req.GetClient().(*storage.Client); ok {
		required = c.RequireDPoP
	}
	proof := proofFrom(ctx)
	sess.AccessJKT = ""
	switch {
	case proof == nil && required:
		return errDPoPRequired
	case proof == nil && sess.DPoPJKT != "":
		return fosite.ErrInvalidGrant.WithHint("The grant is bound to a DPoP key: send a DPoP proof signed with it.")
	case proof == nil:
		return nil
	case sess.DPoPJKT != "" && sess.DPoPJKT != proof.JKT:
		return fosite.ErrInvalidGrant.WithHint("The DPoP proof is signed with another key than the one the grant is bound to.")
	}
	// A public client's grant (its refresh tokens) is bound to the first
	// key it proves; a confidential client's only when it asked (dpop_jkt,
	// or require_dpop): it is sender-constrained by its secret already
	// (RFC 9449 section 5).
	if sess.DPoPJKT == "" && !req.GetGrantTypes().ExactOne("client_credentials") && (req.GetClient().IsPublic() || required) {
		sess.DPoPJKT = proof.JKT
	}
	sess.AccessJKT = proof.JKT
	return nil
}

func (dpopBinding) PopulateTokenEndpointResponse(_ context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if sess, ok := req.GetSession().(*session); ok && sess.AccessJKT != "" {
		resp.SetTokenType("DPoP")
		return nil
	}
	return fosite.ErrUnknownRequest
}

func (dpopBinding) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (dpopBinding) CanHandleTokenEndpointRequest(_ context.Context, req fosite.AccessRequester) bool {
	gt := req.GetGrantTypes()
	return gt.ExactOne("authorization_code") || gt.ExactOne("refresh_token") || gt.ExactOne("client_credentials")
}

// checkDPoPJKT checks the dpop_jkt of an authorization request (RFC 9449
// section 10): a SHA-256 thumbprint, base64url without padding.
func checkDPoPJKT(jkt string) error {
	if jkt == "" {
		return nil
	}
	if b, err := base64.RawURLEncoding.DecodeString(jkt); err != nil || len(b) != 32 {
		return fosite.ErrInvalidRequest.WithHint("dpop_jkt must be the base64url SHA-256 thumbprint (RFC 7638) of the client's DPoP key.")
	}
	return nil
}

// dpopAuthorization returns the access token of an Authorization: DPoP
// header ("" when the header has another scheme or none).
func dpopAuthorization(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "DPoP") {
		return strings.TrimSpace(token)
	}
	return ""
}

// resourceProof checks how an access token was presented to a resource
// endpoint of the broker (/userinfo): a DPoP-bound token only with the
// DPoP scheme and a proof from its key for this request (RFC 9449 section
// 7); an unbound token only as Bearer: with the DPoP scheme it is refused
// (invalid_token), since no key of it can match the proof's.
// On refusal it writes the 401 with its DPoP challenge and returns false.
func (s *Server) resourceProof(w http.ResponseWriter, r *http.Request, path, token string, viaDPoP bool, ar fosite.Requester) bool {
	jkt := ""
	if sess, ok := ar.GetSession().(*session); ok {
		jkt = sess.AccessJKT
	}
	if !viaDPoP {
		if jkt == "" {
			return true
		}
		s.writeDPoPChallenge(w, "invalid_token", "The access token is DPoP-bound: present it with the DPoP scheme and a DPoP proof.")
		return false
	}
	if jkt == "" {
		// RFC 9449 §4.3 (12), §7.1: the proof's key must be the one the
		// token is bound to, and this token is bound to none. Refused
		// before the proof is looked at, so nothing is recorded.
		s.writeDPoPChallenge(w, "invalid_token", "The access token is not DPoP-bound: present it with the Bearer scheme.")
		return false
	}
	raw, err := dpop.FromHeader(r.Header)
	if err == nil {
		_, err = s.dpop.resource.Verify(r.Context(), raw, dpop.Request{Method: r.Method, URL: s.url(path), AccessToken: token, JKT: jkt})
	}
	var pe *dpop.Error
	if errors.As(err, &pe) {
		if s.dpop.nonces != nil {
			w.Header().Set(dpop.NonceHeader, s.dpop.nonces.Current())
		}
		s.writeDPoPChallenge(w, pe.Code, dpopDescription(pe))
		return false
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "dpop: check proof", "err", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return false
	}
	return true
}

// writeDPoPChallenge answers 401 with a DPoP WWW-Authenticate challenge
// (RFC 9449 section 7.1) and the RFC 6750-style JSON body.
func (s *Server) writeDPoPChallenge(w http.ResponseWriter, code, description string) {
	w.Header().Set("WWW-Authenticate", dpopChallenge(code, description))
	writeOAuthError(w, http.StatusUnauthorized, code, description)
}

// dpopChallenge is a DPoP WWW-Authenticate challenge; without a code, the
// bare offer (beside Bearer's) to a request that sent no token.
func dpopChallenge(code, description string) string {
	c := fmt.Sprintf(`DPoP algs=%q`, strings.Join(dpopAlgorithms(), " "))
	if code != "" {
		c += fmt.Sprintf(`, error=%q, error_description=%q`, code, description)
	}
	return c
}

// dpopIntrospection adds what introspection says of a DPoP-bound token
// (RFC 9449 section 6.2): cnf.jkt, and token_type DPoP for an access token.
func dpopIntrospection(resp map[string]any, use fosite.TokenUse, ar fosite.Requester) {
	sess, ok := ar.GetSession().(*session)
	if !ok {
		return
	}
	jkt := sess.AccessJKT
	if use == fosite.RefreshToken {
		jkt = sess.DPoPJKT
	} else if jkt != "" {
		resp["token_type"] = "DPoP"
	}
	if jkt != "" {
		resp["cnf"] = map[string]string{"jkt": jkt}
	}
}
