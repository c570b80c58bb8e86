package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrProofReplayed is returned by ClaimDPoPProof for a proof already used.
var ErrProofReplayed = errors.New("storage: DPoP proof already used")

// ClaimDPoPProof records that the DPoP proof id (the verifier's replay key:
// a hash of the key's thumbprint and the proof's jti) was used, until
// expires. It fails with ErrProofReplayed when id is recorded and has not
// expired, on any replica sharing the database: the insert is one
// statement, so of two replicas claiming the same id at once exactly one
// succeeds. An expired row is taken over; DeleteExpired removes the rest.
// In the context's transaction, the claim is undone with it.
func (s *Store) ClaimDPoPProof(ctx context.Context, id string, expires time.Time) error {
	if id == "" || unstorable(id) {
		return fmt.Errorf("storage: claim DPoP proof: invalid id")
	}
	db, err := s.writer(ctx)
	if err != nil {
		return err
	}
	res, err := db.NewRaw(
		`INSERT INTO dpop_proofs (id, expires_at) VALUES (?, ?)
		 ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at
		 WHERE dpop_proofs.expires_at <= ?`,
		id, expires.UTC(), time.Now().UTC()).Exec(ctx)
	if err != nil {
		return s.wrap("claim DPoP proof", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: claim DPoP proof: %w", err)
	} else if n == 0 {
		return ErrProofReplayed
	}
	return nil
}
