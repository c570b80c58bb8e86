package storage

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// DSNForms names the database addresses Open accepts, for error messages.
const DSNForms = "use sqlite:PATH (a file, e.g. sqlite:data/bridgekeeper.db) or postgres://USER@HOST/DB"

var dsnScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// CheckDSN says whether Open can use dsn without touching anything, so a
// command can refuse a wrong one before it creates files or secrets. The
// error names the problem and the accepted forms.
func CheckDSN(dsn string) error {
	if strings.TrimSpace(dsn) == "" {
		return errors.New("dsn is empty: " + DSNForms)
	}
	m := dsnScheme.FindStringSubmatch(dsn)
	if m == nil {
		return fmt.Errorf("dsn %q has no scheme: did you mean %q? %s", dsn, "sqlite:"+dsn, DSNForms)
	}
	switch strings.ToLower(m[1]) {
	case "sqlite":
		path, extra, _ := strings.Cut(strings.TrimPrefix(dsn[len(m[0]):], "//"), "?")
		switch {
		case path == "":
			return fmt.Errorf("dsn %q needs a file path: %s", dsn, DSNForms)
		case path == ":memory:" || strings.Contains(extra, "mode=memory"):
			return fmt.Errorf("dsn %q: in-memory SQLite is not supported (readers and the writer use separate connections): %s", dsn, DSNForms)
		}
		if m[1] != "sqlite" {
			return fmt.Errorf("dsn %q: write the scheme in lower case: %s", dsn, DSNForms)
		}
		return nil
	case "postgres", "postgresql":
		if !strings.HasPrefix(dsn, m[1]+"://") || m[1] != strings.ToLower(m[1]) {
			return fmt.Errorf("dsn %q: %s", redactDSN(dsn), DSNForms)
		}
		return nil
	default:
		return fmt.Errorf("unsupported database %q in dsn %q: %s", m[1], redactDSN(dsn), DSNForms)
	}
}
