package mfa

import (
	"slices"
	"testing"
)

func TestACRScheme(t *testing.T) {
	if ACR([]string{"pwd"}) != ACRPassword || ACR([]string{"pwd", "otp", "mfa"}) != ACRMFA || ACR(nil) != ACRPassword {
		t.Fatal("ACR of amr")
	}
	for in, want := range map[string]int{
		"": 0, "urn:other": 0, ACRMFA: 2, ACRPassword: 1,
		ACRMFA + " " + ACRPassword: 1, // any listed value satisfies: the weakest counts
		"urn:other " + ACRMFA:      2,
	} {
		if got := Wanted(in); got != want {
			t.Errorf("Wanted(%q) = %d, want %d", in, got, want)
		}
	}
	for _, tc := range []struct {
		amr    []string
		method string
		want   []string
	}{
		{[]string{"pwd"}, "otp", []string{"pwd", "otp", "mfa"}},
		{[]string{"pwd", "otp", "mfa"}, "otp", []string{"pwd", "otp", "mfa"}},
		{nil, "hwk", []string{"hwk"}},
		{[]string{"fed"}, "otp", []string{"fed", "otp", "mfa"}},
	} {
		if got := WithFactor(tc.amr, tc.method); !slices.Equal(got, tc.want) {
			t.Errorf("WithFactor(%v, %s) = %v, want %v", tc.amr, tc.method, got, tc.want)
		}
	}
}
