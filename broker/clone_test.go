package broker

import (
	"reflect"
	"testing"
	"time"
)

// TestSessionCloneShares fills every field of a session (reflection finds
// them all, so a field added later is filled too), clones it, and checks
// that the clone is equal and shares no map, slice or pointer with the
// original: changing a clone never changes the session it came from.
func TestSessionCloneShares(t *testing.T) {
	orig := &session{}
	fillValue(reflect.ValueOf(orig).Elem(), 0)
	clone := orig.Clone().(*session)
	if !reflect.DeepEqual(orig, clone) {
		t.Fatalf("clone differs:\n%#v\n%#v", orig, clone)
	}
	assertNoSharing(t, "session", reflect.ValueOf(orig), reflect.ValueOf(clone))
}

// TestSessionCloneKeepsNil checks that nil and empty stay apart (both are
// stored and compared as they are).
func TestSessionCloneKeepsNil(t *testing.T) {
	s := newSession()
	s.GrantScopes = []string{}
	s.Claims.Extra = map[string]any{"list": []any(nil), "empty": []any{}}
	c := s.Clone().(*session)
	if !reflect.DeepEqual(s, c) {
		t.Fatalf("clone differs:\n%#v\n%#v", s, c)
	}
	if c.AccessAudience != nil || c.GrantScopes == nil || c.ExpiresAt != nil || c.Headers.Extra != nil {
		t.Errorf("nil or empty changed: %#v", c)
	}
	if (*session)(nil).Clone() != nil {
		t.Error("a nil session's clone is not nil")
	}
}

// fillValue sets v (and everything it holds) to non-zero values: strings,
// numbers, times, two-element slices, two-entry maps, pointers to filled
// values, and, for claims (interfaces), nested JSON-like maps and lists.
func fillValue(v reflect.Value, depth int) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillValue(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillValue(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fillValue(k, depth+1)
			if k.Kind() == reflect.String {
				k.SetString(k.String() + string(rune('a'+i)))
			}
			e := reflect.New(v.Type().Elem()).Elem()
			fillValue(e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{
			"name":   "Alice",
			"n":      float64(depth),
			"list":   []any{"a", map[string]any{"b": []any{true}}},
			"amr":    []string{"pwd", "otp"},
			"nested": map[string]any{"c": map[string]string{"d": "e"}},
		}))
	}
}

// assertNoSharing fails for every map, slice (with elements) or pointer
// that a and b share, anywhere below them.
func assertNoSharing(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	if a.Kind() != b.Kind() || !a.IsValid() {
		return
	}
	if a.Type() == reflect.TypeFor[time.Time]() {
		return // a value; its *Location is shared by design
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: pointer shared", path)
			return
		}
		assertNoSharing(t, path, a.Elem(), b.Elem())
	case reflect.Interface:
		if !a.IsNil() && !b.IsNil() {
			assertNoSharing(t, path, a.Elem(), b.Elem())
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				assertNoSharing(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && b.Len() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s: slice shared", path)
			return
		}
		for i := range min(a.Len(), b.Len()) {
			assertNoSharing(t, path+"[]", a.Index(i), b.Index(i))
		}
	case reflect.Map:
		if !a.IsNil() && !b.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s: map shared", path)
			return
		}
		for _, k := range a.MapKeys() {
			assertNoSharing(t, path+"["+k.String()+"]", a.MapIndex(k), b.MapIndex(k))
		}
	}
}
