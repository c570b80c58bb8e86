package storage

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// parseList reads every list sqlList (or bun) writes as json.Unmarshal
// does, the common form cut apart directly and the rest decoded.
func TestParseList(t *testing.T) {
	lists := [][]string{nil, {}, {""}, {"", ""}, {"a"}, {"openid", "offline_access", "profile"},
		{"a,b", `","`, `"`, `\`, "<&>", "é ü", "a\"b", `","","`}, {"https://api.example/x?y=1&z=2"}}
	for _, l := range lists {
		stored, err := sqlList(l)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseList(stored)
		if err != nil {
			t.Fatalf("%s: %v", stored, err)
		}
		if want := orEmpty(l); !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", stored, got, want)
		}
	}
	for _, stored := range []string{"null", `[ "a" , "b" ]`, `["a" ,"b"]`, `["a","b" ]`, `["\u0041"]`} {
		var want []string
		if err := json.Unmarshal([]byte(stored), &want); err != nil {
			t.Fatal(err)
		}
		got, err := parseList(stored)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: got %q (%v), want %q", stored, got, err, want)
		}
	}
	for _, bad := range []string{"", "[", `["a"`, `["a",]`, `{"a":1}`} {
		if got, err := parseList(bad); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}

// sqlList writes every list as encoding/json does (the plain ones without
// it), so that stored lists read the same by any reader.
func TestSQLListMatchesJSON(t *testing.T) {
	lists := [][]string{{}, {""}, {"openid", "offline_access"}, {"https://api.example/x?y=1"}, {"a b", "~!#$%'()*+,-./:;=?@[]^_`{|}"},
		{"a\"b"}, {`a\b`}, {"<"}, {">"}, {"&"}, {"\x7f"}, {"\t"}, {"é"}, {"\u2028"}, {"ok", "\xff"}}
	for _, l := range lists {
		got, err := sqlList(l)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%q: sqlList wrote %s, encoding/json %s", l, got, want)
		}
	}
}

// A token row (and a user) scanned by hand equals the same row scanned
// by bun, on every token table, with and without the optional columns.
func TestRowScanMatchesBun(t *testing.T) {
	s := openSQLiteForTest(t)
	ctx := context.Background()
	if err := s.CreateClient(ctx, serviceClient("app")); err != nil {
		t.Fatal(err)
	}
	client, err := s.LookupClient(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	sess := &openid.DefaultSession{Subject: "user-1", ExpiresAt: map[fosite.TokenType]time.Time{
		fosite.AccessToken: time.Now().Add(time.Hour), fosite.RefreshToken: time.Now().Add(24 * time.Hour)}}
	req := &fosite.Request{ID: "req-1", RequestedAt: time.Now(), Client: client,
		RequestedScope: fosite.Arguments{"openid", "a,b"}, GrantedScope: fosite.Arguments{"openid"},
		GrantedAudience: fosite.Arguments{"https://api.example/"}, Session: sess}
	noExpiry := *req
	noExpiry.Session = &openid.DefaultSession{Subject: "user-2"}
	for _, w := range []func() (preparedWrite, error){
		func() (preparedWrite, error) { return s.prepareCreateAccessTokenSession("at", req) },
		func() (preparedWrite, error) { return s.prepareCreateAccessTokenSession("at-noexp", &noExpiry) },
		func() (preparedWrite, error) { return s.prepareCreateRefreshTokenSession("rt", "at", req) },
		func() (preparedWrite, error) { return s.prepareCreateAuthorizeCodeSession("code", req) },
		func() (preparedWrite, error) { return s.prepareCreatePKCERequestSession("pkce", req) },
	} {
		write, err := w()
		if err != nil {
			t.Fatal(err)
		}
		if err := write(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.rotateRefreshToken(ctx, "req-1", "rt", nil); err != nil { // sets first_used_at
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &User{ID: "user-1", Email: "a@example.org", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	compareScans(t, s, tableAccess, "at", &accessRow{}, &accessRow{})
	compareScans(t, s, tableAccess, "at-noexp", &accessRow{}, &accessRow{})
	compareScans(t, s, tableRefresh, "rt", &refreshRow{}, &refreshRow{})
	compareScans(t, s, tableCodes, "code", &codeRow{}, &codeRow{})
	compareScans(t, s, tablePKCE, "pkce", &pkceRow{}, &pkceRow{})

	byHand, byBun := &User{}, &User{}
	scanBoth(t, s, sqlGetUserSQLite, "user-1", byHand, byBun)
	if !reflect.DeepEqual(byHand, byBun) {
		t.Errorf("user scanned by hand:\n%+v\nby bun:\n%+v", byHand, byBun)
	}
	plain := &User{}
	scanBoth(t, s, sqlGetUser, "user-1", byHand, plain)
	if !reflect.DeepEqual(byHand, plain) {
		t.Errorf("user scanned by hand:\n%+v\nby bun with the driver's times:\n%+v", byHand, plain)
	}
}

func compareScans(t *testing.T, s *Store, table, sig string, byHand, byBun any) {
	t.Helper()
	scanBoth(t, s, s.selectBySignature(table), sig, byHand, byBun)
	// bun, through the driver's own time parsing, reads the same
	plain := reflect.New(reflect.TypeOf(byBun).Elem()).Interface()
	scanBoth(t, s, tokenSQL[table].selectBySignature, sig, byHand, plain)
	if !reflect.DeepEqual(byHand, plain) {
		t.Errorf("%s %s scanned by hand:\n%+v\nby bun with the driver's times:\n%+v", table, sig, byHand, plain)
	}
	if !reflect.DeepEqual(byHand, byBun) {
		t.Errorf("%s %s scanned by hand:\n%+v\nby bun:\n%+v", table, sig, byHand, byBun)
	}
}

// scanBoth reads the row query answers for arg into byHand (scanRow) and
// into byBun (bun's ScanRow).
func scanBoth(t *testing.T, s *Store, query, arg string, byHand, byBun any) {
	t.Helper()
	ctx := context.Background()
	run := s.runner(s.reader(ctx))
	rows, err := run.query(ctx, query, arg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.scanOne(ctx, rows, byHand); err != nil {
		t.Fatal(err)
	}
	rows, err = run.query(ctx, query, arg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatal("no row")
	}
	if err := s.db.ScanRow(ctx, rows, byBun); err != nil {
		t.Fatal(err)
	}
}
