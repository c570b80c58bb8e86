// Command connector-facebook is the Facebook Login connector as a
// Bridgekeeper plugin binary.
package main

import (
	"github.com/bridgekeeper/bridgekeeper/connectors/facebook"
	"github.com/bridgekeeper/bridgekeeper/plugins/sdk"
)

func main() { sdk.Serve(facebook.Open) }
