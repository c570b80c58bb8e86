package mfa

import (
	"slices"
	"strings"
)

// Authentication context class references (the acr claim) the broker
// issues, weakest first. A session's acr follows from its amr: ACRMFA when
// it used two factors (amr holds "mfa", or it is federated and the
// upstream reported a second factor), else ACRPassword.
const (
	// ACRPassword: one factor (a password, or an upstream sign-in that
	// reported no second factor).
	ACRPassword = "urn:bridgekeeper:acr:pwd"
	// ACRMFA: two factors (password and a one-time code, or a factor that
	// is two in itself, such as a passkey with user verification).
	ACRMFA = "urn:bridgekeeper:acr:mfa"
)

// Supported lists the acr values, weakest first (discovery's
// acr_values_supported).
var Supported = []string{ACRPassword, ACRMFA}

// Level ranks an acr value: 1 for ACRPassword, 2 for ACRMFA, 0 for a value
// the broker does not know.
func Level(acr string) int {
	return slices.Index(Supported, acr) + 1
}

// ACR is the acr of a sign-in with the methods amr (RFC 8176 values).
func ACR(amr []string) string {
	if slices.Contains(amr, "mfa") || upstreamMFA(amr) {
		return ACRMFA
	}
	return ACRPassword
}

// Wanted is the lowest acr level the space-separated acr_values of an
// authorization request accept: the weakest known value listed (OpenID
// Connect lists them in order of preference; any of them satisfies the
// request). 0 when none is known or none is asked for.
func Wanted(acrValues string) int {
	want := 0
	for _, v := range strings.Fields(acrValues) {
		if l := Level(v); l > 0 && (want == 0 || l < want) {
			want = l
		}
	}
	return want
}

// WithFactor is amr after the user also proved method (an RFC 8176 value,
// e.g. "otp"): the methods once each, in order, and "mfa" when they are
// two or more.
func WithFactor(amr []string, method string) []string {
	var out []string
	for _, m := range append(slices.Clone(amr), method) {
		if m != "mfa" && m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if len(out) >= 2 {
		out = append(out, "mfa")
	}
	return out
}
