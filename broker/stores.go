package broker

import (
	"context"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// sessionStore is what the broker's login, session, logout and userinfo
// code uses of storage (Config.Store fits): pending logins, browser
// sessions, users, and the grants of an upstream identity. The token
// endpoints use the token store (txstore.go) instead.
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
