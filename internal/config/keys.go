package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkKeys reports every key of the document that the configuration does
// not have, by its path and line, with the nearest valid key — in the
// words of the file, not of the Go types behind it.
func checkKeys(doc *yaml.Node) error {
	var errs []error
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		checkNode(doc.Content[0], reflect.TypeOf(Config{}), "", &errs)
	}
	return errors.Join(errs...)
}

func checkNode(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // a merge key: its mapping holds keys of this level
				checkNode(v, t, path, errs)
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, unknownKey(k, path, fields))
				continue
			}
			checkNode(v, ft, path+k.Value+".", errs)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			checkNode(item, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i), errs)
		}
	}
	// Anything else (scalars, maps such as a connector's config) is the
	// decoder's to check.
}

// yamlFields maps the YAML keys of a struct to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if key != "" && key != "-" && sf.IsExported() {
			m[key] = sf.Type
		}
	}
	return m
}

func unknownKey(k *yaml.Node, path string, fields map[string]reflect.Type) error {
	msg := fmt.Sprintf("line %d: unknown key %q", k.Line, path+k.Value)
	if near := nearestKey(k.Value, fields); near != "" {
		return fmt.Errorf("%s; did you mean %q?", msg, path+near)
	}
	if path == "" {
		if full := nestedKey(k.Value); full != "" {
			return fmt.Errorf("%s; did you mean %q (under %q)?", msg, full, strings.Split(full, ".")[0])
		}
	}
	keys := make([]string, 0, len(fields))
	for name := range fields {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	return fmt.Errorf("%s; valid keys here: %s", msg, strings.Join(keys, ", "))
}

// nearestKey is the valid key closest to name, if it is close enough to be
// a typo: an edit distance of at most a third of its length (at least 1,
// at most 3).
func nearestKey(name string, fields map[string]reflect.Type) string {
	limit := min(max(len(name)/3, 1), 3)
	best, bestD := "", limit+1
	for key := range fields {
		if d := editDistance(strings.ToLower(name), key); d < bestD || (d == bestD && key < best) {
			best, bestD = key, d
		}
	}
	return best
}

// nestedKey finds a top-level key that belongs one level down (listen
// under metrics, access_token_lifetime under tokens); "" when there is no
// single such key.
func nestedKey(name string) string {
	var found []string
	for section, t := range yamlFields(reflect.TypeOf(Config{})) {
		if t.Kind() != reflect.Struct {
			continue
		}
		if _, ok := yamlFields(t)[name]; ok {
			found = append(found, section+"."+name)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours ("hots" for
// "host") each count one. Bytes: keys are ASCII.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
