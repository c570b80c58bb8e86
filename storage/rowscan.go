package storage

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The token endpoint reads a token row (and, for a refresh, its user) on
// every request. bun scans a model by reflection, field by field; the
// rows read there are scanned by hand instead, into typed fields, with
// the same stored formats: what bun wrote reads the same, and what is
// written here bun reads.

// rowScanner is a destination of scanOne that scans a row itself.
type rowScanner interface {
	scanRow(rows *sql.Rows) error
}

// scanRequest scans a token row's columns in requestColumns order,
// followed by extra destinations.
func (r *requestRow) scanRequest(rows *sql.Rows, extra ...any) error {
	var (
		lists   [4]string
		expires nullTime
	)
	dest := [15]any{&r.Signature, &r.RequestID, (*sqlTimeScan)(&r.RequestedAt), &r.ClientID,
		&lists[0], &lists[1], &lists[2], &lists[3], &r.Form, &r.SessionData, &r.Subject, &r.Active, &expires}
	n := 13 + copy(dest[13:], extra)
	if n != 13+len(extra) {
		return fmt.Errorf("storage: scan token row: %d extra columns", len(extra))
	}
	if err := rows.Scan(dest[:n]...); err != nil {
		return err
	}
	for i, l := range []*[]string{&r.Scopes, &r.GrantedScopes, &r.Audiences, &r.GrantedAudiences} {
		var err error
		if *l, err = parseList(lists[i]); err != nil {
			return err
		}
	}
	r.ExpiresAt = expires.ptr()
	return nil
}

func (r *requestRow) scanRow(rows *sql.Rows) error { return r.scanRequest(rows) }

func (r *refreshRow) scanRow(rows *sql.Rows) error {
	var firstUsed nullTime
	if err := r.scanRequest(rows, &r.AccessTokenSignature, &firstUsed); err != nil {
		return err
	}
	r.FirstUsedAt = firstUsed.ptr()
	return nil
}

func (r *codeRow) scanRow(rows *sql.Rows) error {
	var pkce, oidc sql.NullString
	if err := r.scanRequest(rows, &pkce, &oidc); err != nil {
		return err
	}
	r.PKCEForm, r.OIDCForm = nullString(pkce), nullString(oidc)
	return nil
}

func (u *User) scanRow(rows *sql.Rows) error {
	return rows.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.PasswordHash, &u.Name, &u.GivenName, &u.FamilyName,
		&u.Picture, &u.Active, &u.Disabled, (*sqlTimeScan)(&u.CreatedAt), (*sqlTimeScan)(&u.UpdatedAt))
}

func nullString(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// sqlTimeScan scans a time column: a time.Time from the driver (Postgres;
// SQLite for a TIMESTAMP column it can parse), else the text bun writes.
type sqlTimeScan time.Time

func (t *sqlTimeScan) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*t = sqlTimeScan(v)
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("storage: scan a time from %T", src)
}

// sqlTimeFormats are the forms a time is stored in as text (sqlTime's and
// bun's, with or without a zone).
var sqlTimeFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

func (t *sqlTimeScan) parse(s string) error {
	s = strings.TrimSuffix(s, "Z")
	for _, f := range sqlTimeFormats {
		if v, err := time.Parse(f, s); err == nil {
			*t = sqlTimeScan(v)
			return nil
		}
	}
	return fmt.Errorf("storage: scan a time from %q", s)
}

// nullTime is a nullable time column.
type nullTime struct {
	t     time.Time
	valid bool
}

func (n *nullTime) Scan(src any) error {
	if src == nil {
		*n = nullTime{}
		return nil
	}
	n.valid = true
	return (*sqlTimeScan)(&n.t).Scan(src)
}

func (n nullTime) ptr() *time.Time {
	if !n.valid {
		return nil
	}
	return &n.t
}

// parseList decodes a list as sqlList (and bun) store it: a JSON array of
// strings. The common form — no escapes, no spaces — is cut apart
// directly; anything else goes through encoding/json.
func parseList(s string) ([]string, error) {
	if s == "[]" {
		return []string{}, nil
	}
	if len(s) >= 4 && s[0] == '[' && s[1] == '"' && s[len(s)-2] == '"' && s[len(s)-1] == ']' &&
		!strings.ContainsAny(s, `\`) {
		inner := s[2 : len(s)-2] // a","b","c
		out := make([]string, 0, strings.Count(inner, `","`)+1)
		for {
			i := strings.IndexByte(inner, '"')
			if i < 0 {
				return append(out, inner), nil
			}
			if !strings.HasPrefix(inner[i:], `","`) {
				break // not the common form after all
			}
			out = append(out, inner[:i])
			inner = inner[i+3:]
		}
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("storage: decode stored list: %w", err)
	}
	return out, nil
}
