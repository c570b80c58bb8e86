// Command connector-oidc is the generic OpenID Connect connector (with the
// okta and google presets) as a Bridgekeeper plugin binary.
package main

import (
	"github.com/bridgekeeper/bridgekeeper/connectors/oidc"
	"github.com/bridgekeeper/bridgekeeper/plugins/sdk"
)

func main() { sdk.Serve(oidc.Open) }
