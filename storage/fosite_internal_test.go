package storage

import (
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun/dialect/sqlitedialect"
)

// The hand-written statements name the columns bun maps for each model, so
// that bun can scan what they select.
func TestHandWrittenColumnsMatchBun(t *testing.T) {
	tables := sqlitedialect.New().Tables()
	for _, tc := range []struct {
		model   any
		columns string
	}{
		{Client{}, clientColumns},
		{accessRow{}, requestColumns},
		{codeRow{}, codeColumns},
		{refreshRow{}, refreshColumns},
	} {
		var want []string
		for _, f := range tables.Get(reflect.TypeOf(tc.model)).Fields {
			want = append(want, f.Name)
		}
		if got := strings.Split(tc.columns, ", "); !reflect.DeepEqual(got, want) {
			t.Errorf("%T: hand-written columns %v, bun maps %v", tc.model, got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	h := newHotSQL(nil, nil, true)
	if got, want := h.rebind("UPDATE t SET a = ? WHERE b = ? AND c = ?"), "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"; got != want {
		t.Errorf("rebind: %q, want %q", got, want)
	}
}
