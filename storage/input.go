package storage

import (
	"strings"
	"unicode/utf8"
)

// unstorable reports whether a lookup key from outside (a token signature,
// a client id, an e-mail address) cannot be in the database at all: text
// columns hold no NUL bytes or invalid UTF-8. Such keys are answered "not
// found" without a query — SQLite fails to parse a statement with a NUL
// in it and Postgres refuses the encoding, which would otherwise surface
// as server errors any client could provoke.
func unstorable(keys ...string) bool {
	for _, k := range keys {
		if strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k) {
			return true
		}
	}
	return false
}
