package broker

import (
	"context"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Store is what the broker uses of storage (Config.Store; *storage.Store
// fits, and is what the composition root passes). It is the narrow
// interfaces below, each declared beside its use, and the factory of the
// token store:
//   - sessionStore: pending logins, browser sessions, users and the
//     grants of an upstream identity (login, session, logout, userinfo);
//   - clientLister: every client, for the CORS origin cache (cors.go);
//   - dpopProofs: the DPoP replay cache (dpop.go);
//   - loginSteps: the second step of a login (secondstep.go).
//
// TokenStore builds the token store (storage.TokenStore), which fosite is
// handed whole as its storage; the broker builds it in New because its
// configuration holds the broker's token strategy (the code's signature
// and the HMAC check of a replayed token), and uses it only through
// tokenStore (provider.go) and refreshUserCheck's revocations.
type Store interface {
	sessionStore
	clientLister
	dpopProofs
	loginSteps
	TokenStore(cfg storage.TokenStoreConfig) *storage.TokenStore
}

// dpopProofs is the database's DPoP replay cache: claiming a proof's jti
// fails with storage.ErrProofReplayed when it was claimed before.
type dpopProofs interface {
	ClaimDPoPProof(ctx context.Context, id string, expires time.Time) error
}

// loginSteps holds a login between its password and its second factor
// (secondstep.go).
type loginSteps interface {
	PutLoginStep(ctx context.Context, st *storage.LoginStep) error
	GetLoginStep(ctx context.Context, loginID string) (*storage.LoginStep, error)
	DeleteLoginStep(ctx context.Context, loginID string) error
}

// sessionStore is what the broker's login, session, logout and userinfo
// code uses of storage (part of Store): pending logins, browser
// sessions, users, and the grants of an upstream identity. The token
// endpoints use the token store (tokenStore, provider.go) instead.
type sessionStore interface {
	Ping(ctx context.Context) error

	CreatePendingLogin(ctx context.Context, p *storage.PendingLogin) error
	GetPendingLogin(ctx context.Context, id string) (*storage.PendingLogin, error)
	RecordUpstreamState(ctx context.Context, id, binding, connectorID, stateHash string, connectorState []byte) error
	ClaimUpstreamState(ctx context.Context, id, binding, connectorID, stateHash string) (*storage.PendingLogin, error)
	TakeBoundPendingLogin(ctx context.Context, id, binding string) (*storage.PendingLogin, error)
	UsePendingLogin(ctx context.Context, id, binding string) error

	browserSessions
	GetBrowserSession(ctx context.Context, id string) (*storage.BrowserSession, error)
	DeleteIdentityBrowserSessions(ctx context.Context, userID, idp, subject string) error

	GetUser(ctx context.Context, id string) (*storage.User, error)
	GetUserByEmail(ctx context.Context, email string) (*storage.User, error)
	ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string) error

	SubjectGrants(ctx context.Context, subject string) ([]storage.SubjectGrant, error)
	RevokeGrant(ctx context.Context, requestID string) error

	LookupClient(ctx context.Context, id string) (*storage.Client, error)
}

// browserSessions is what a new login session writes (loginSession.write).
type browserSessions interface {
	CreateBrowserSession(ctx context.Context, bs *storage.BrowserSession) error
	DeleteBrowserSession(ctx context.Context, id string) error
}

// clientLister is what the CORS origin cache reads: every client.
type clientLister interface {
	ListClients(ctx context.Context) ([]storage.Client, error)
}
