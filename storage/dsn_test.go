package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bridgekeeper/bridgekeeper/storage"
)

// CheckDSN accepts exactly what Open can open and names the accepted forms
// in every refusal; Open refuses with the same words.
func TestCheckDSN(t *testing.T) {
	for _, dsn := range []string{
		"sqlite:data/bk.db", "sqlite:///var/lib/bk.db", "sqlite:bk.db?_busy_timeout=5000",
		"postgres://bk@db.internal/bk?sslmode=require", "postgresql://bk:pw@127.0.0.1:5432/bk",
	} {
		if err := storage.CheckDSN(dsn); err != nil {
			t.Errorf("CheckDSN(%q) = %v, want nil", dsn, err)
		}
	}
	for dsn, want := range map[string]string{
		"":                         "dsn is empty",
		"data/bk.db":               `did you mean "sqlite:data/bk.db"`,
		"/var/lib/bk.db":           `did you mean "sqlite:/var/lib/bk.db"`,
		"mysql://bk:hunter2@db/bk": `unsupported database "mysql"`,
		"sqlite:":                  "needs a file path",
		"sqlite:?cache=shared":     "needs a file path",
		"sqlite::memory:":          "in-memory",
		"sqlite:bk.db?mode=memory": "in-memory",
		"SQLITE:bk.db":             "lower case",
		"postgres:bk":              "postgres://USER@HOST/DB",
		"POSTGRES://db/bk":         "postgres://USER@HOST/DB",
	} {
		err := storage.CheckDSN(dsn)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "sqlite:PATH") {
			t.Errorf("CheckDSN(%q) = %v, want %q and the accepted forms", dsn, err, want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("CheckDSN(%q) shows the password: %v", dsn, err)
		}
		if _, oerr := storage.Open(context.Background(), dsn); oerr == nil || !strings.Contains(oerr.Error(), err.Error()) {
			t.Errorf("Open(%q) = %v, want %v", dsn, oerr, err)
		}
	}
}
