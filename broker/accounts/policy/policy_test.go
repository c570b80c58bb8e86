package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	c := New()
	tests := []struct {
		password string
		personal []string
		want     error
	}{
		{"short", nil, ErrTooShort},
		{"sevenCh", nil, ErrTooShort},
		{"ünïcødé", nil, ErrTooShort}, // 7 characters, more bytes
		{strings.Repeat("horse battery ", 19), nil, ErrTooLong},
		{"password", nil, ErrCommon},
		{"Password1", nil, ErrCommon},
		{"P@ssw0rd2024!", nil, ErrCommon},
		{"!!Sunshine99", nil, ErrCommon},
		{"qwertyuiop", nil, ErrCommon},
		{"1qaz2wsx3edc", nil, ErrCommon},
		{"12345678", nil, ErrCommon},
		{"87654321", nil, ErrCommon},
		{"abcdefghij", nil, ErrCommon},
		{"aaaaaaaaaaaa", nil, ErrCommon},
		{"abababababab", nil, ErrCommon},
		{"monkeymonkey", nil, ErrCommon},
		{"tr0ub4dor", nil, nil},
		{"trustno1", nil, ErrCommon},
		{"@dmin2024", nil, ErrCommon},
		{"ada.lovelace1815", []string{"ada.lovelace@example.test", "Ada Lovelace"}, ErrPersonal},
		{"AdaLovelace!", []string{"ada@example.test", "Ada Lovelace"}, ErrPersonal},
		{"bridgekeeper1", []string{"Bridgekeeper"}, ErrPersonal},
		{"ada likes analytical engines", []string{"ada@example.test", "Ada Lovelace"}, nil},
		{"correct horse battery staple", nil, nil},
		{"Tr0ub4dor&3", nil, nil},
		{"vague-otter-lantern", nil, nil},
		{"xxxxxxxyz", nil, ErrCommon}, // three distinct characters
		{strings.Repeat("long enough and odd ", 12), nil, nil},
		{"日本語のパスワード", nil, nil},
	}
	for _, tt := range tests {
		if got := c.Check(tt.password, tt.personal...); !errors.Is(got, tt.want) {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.password, tt.personal, got, tt.want)
		}
	}
}

func TestListIsEmbedded(t *testing.T) {
	c := New()
	if len(c.common) < 3000 {
		t.Fatalf("embedded list has %d entries, want thousands", len(c.common))
	}
	for _, w := range []string{"password", "iloveyou", "qwerty", "letmein", "dragon", "asdfghjkl"} {
		if _, ok := c.common[w]; !ok {
			t.Errorf("%q missing from the list", w)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	c := New()
	for b.Loop() {
		c.Check("correct horse battery staple", "ada@example.test", "Ada Lovelace")
	}
}
