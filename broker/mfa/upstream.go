package mfa

import "slices"

// upstreamSecondFactors are the RFC 8176 methods that, reported by an
// upstream identity provider, mean the user proved more than a password
// there: "mfa" itself, and the possession and inherence factors (a
// one-time code, a hardware or software key, an SMS or call, a smart card,
// biometrics). Knowledge factors ("pwd", "pin", "kba") and signals that
// are no factor ("user", "rba", "geo", "wia", "mca") are not.
var upstreamSecondFactors = []string{"mfa", "otp", "hwk", "swk", "sms", "tel", "sc", "fpt", "face", "iris", "retina", "vbm"}

// upstreamMFA reports whether amr is a federated session's (it holds
// "fed") whose upstream reported a second factor. The broker cannot check
// what the upstream says; it is the connector's job to pass on only what
// the upstream signed (the ID token's amr), never a guess.
func upstreamMFA(amr []string) bool {
	if !slices.Contains(amr, "fed") {
		return false
	}
	for _, m := range amr {
		if slices.Contains(upstreamSecondFactors, m) {
			return true
		}
	}
	return false
}
