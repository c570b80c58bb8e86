package federation

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/connectors"
)

func TestDetailOf(t *testing.T) {
	p := connectors.ErrPolicy
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf(`connector "fb": HandleCallback: facebook: %s: no e-mail shared: %w`, p.Error(), p), "no e-mail shared"},
		{fmt.Errorf(`connector "node": HandleCallback: user x has no e-mail: %w`, p), "user x has no e-mail"},
		{fmt.Errorf(`connector "g": HandleCallback: %w`, p), ""},
		{fmt.Errorf("oidc: %w", p), ""},
		{errors.New("unrelated"), ""},
	} {
		if got := detailOf(tc.err, p); got != tc.want {
			t.Errorf("detailOf(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
