package mfa

import "testing"

// TestUpstreamACR: a federated session is ACRMFA only when its upstream
// reported a second factor; a password, a PIN or a signal that is no
// factor is ACRPassword.
func TestUpstreamACR(t *testing.T) {
	for _, tc := range []struct {
		amr  []string
		want string
	}{
		{[]string{"fed"}, ACRPassword},
		{[]string{"fed", "pwd"}, ACRPassword},
		{[]string{"fed", "pwd", "pwd"}, ACRPassword}, // linking added the account's password
		{[]string{"fed", "pin", "kba", "user", "rba", "geo", "wia", "mca"}, ACRPassword},
		{[]string{"fed", "pwd", "mfa"}, ACRMFA},
		{[]string{"fed", "pwd", "otp"}, ACRMFA},
		{[]string{"fed", "hwk"}, ACRMFA},
		{[]string{"fed", "swk", "user"}, ACRMFA},
		{[]string{"fed", "pwd", "sms"}, ACRMFA},
		{[]string{"fed", "face"}, ACRMFA},
		{[]string{"fed", "MFA"}, ACRPassword}, // RFC 8176 values are case-sensitive
	} {
		if got := ACR(tc.amr); got != tc.want {
			t.Errorf("ACR(%q) = %s, want %s", tc.amr, got, tc.want)
		}
	}
}
