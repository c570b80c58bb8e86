package federation

import "github.com/bridgekeeper/bridgekeeper/storage"

// OpenConnectorData returns the connector data of a stored identity in
// clear, for the package's external tests.
func OpenConnectorData(f *Federation, id *storage.Identity) ([]byte, error) {
	return f.openData(id.ConnectorID, id.Subject, id.ConnectorData)
}
