package federation

import (
	"context"
	"time"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// Store is what federation uses of storage (*storage.Store fits): users,
// the upstream identities linked to them, and the re-check time of a
// browser session.
type Store interface {
	CreateUser(ctx context.Context, u *storage.User) error
	GetUser(ctx context.Context, id string) (*storage.User, error)
	GetUserByEmail(ctx context.Context, email string) (*storage.User, error)
	SetUserProfile(ctx context.Context, id string, p storage.UserProfile) error
	DeleteUser(ctx context.Context, id string) error

	GetIdentity(ctx context.Context, connectorID, subject string) (*storage.Identity, error)
	GetLinkedUser(ctx context.Context, connectorID, subject string) (*storage.User, error)
	ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error)
	LinkIdentity(ctx context.Context, id *storage.Identity) (created bool, err error)
	UpsertIdentity(ctx context.Context, id *storage.Identity) error
	RecordIdentityLogin(ctx context.Context, id *storage.Identity) error
	DeleteIdentity(ctx context.Context, connectorID, subject string) error
	IdentitiesWithConnectorDataNotPrefixed(ctx context.Context, prefix []byte) ([]storage.Identity, error)
	ReplaceConnectorData(ctx context.Context, connectorID, subject string, old, data []byte) (bool, error)

	MarkBrowserSessionChecked(ctx context.Context, id string, checkedAt time.Time) error
}
