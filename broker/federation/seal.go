package federation

import (
	"bytes"
	"fmt"

	"github.com/bridgekeeper/bridgekeeper/internal/secret"
)

// sealedPrefix marks connector data the broker encrypted (AES-256-GCM
// under Config.DataKey). Connector data without it was written before
// the broker encrypted it: it is read as it is and encrypted at the
// identity's next login or refresh, which write it anew.
const sealedPrefix = "bk-sealed-v1:"

// dataAD is the associated data of an identity's connector data: sealed
// data copied to another identity's row does not decrypt.
func dataAD(connectorID, subject string) []byte {
	return []byte("bridgekeeper connector data\x00" + connectorID + "\x00" + subject)
}

// sealData encrypts the connector data of the identity (connectorID,
// subject) for storage; empty data stays empty.
func (f *Federation) sealData(connectorID, subject string, data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	sealed, err := secret.Seal(f.cfg.DataKey, data, dataAD(connectorID, subject))
	if err != nil {
		return nil, fmt.Errorf("encrypt connector data: %w", err)
	}
	return append([]byte(sealedPrefix), sealed...), nil
}

// openData returns the connector data of a stored identity in clear.
func (f *Federation) openData(connectorID, subject string, stored []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(stored, []byte(sealedPrefix))
	if !ok {
		return stored, nil // written before encryption: the next write seals it
	}
	plain, err := secret.Open(f.cfg.DataKey, rest, dataAD(connectorID, subject))
	if err != nil {
		return nil, fmt.Errorf("decrypt connector data of %s/%s: %w", connectorID, subject, err)
	}
	return plain, nil
}

// isSealed reports whether stored connector data is encrypted.
func isSealed(stored []byte) bool { return bytes.HasPrefix(stored, []byte(sealedPrefix)) }
