package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeLayoutNamesEveryFolder: the README's Layout list names every
// top-level folder of the repository (as `name/`) and every package under
// internal/ (as `name`), so a newcomer finds each one there.
func TestReadmeLayoutNamesEveryFolder(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\nLayout (")
	if !ok {
		t.Fatal("README.md has no Layout list")
	}
	layout, _, _ = strings.Cut(layout, "\n\n## ")
	layout, _, _ = strings.Cut(layout, "\n\n\n")
	dirs := func(path string) []string {
		entries, err := os.ReadDir(path)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "bin" && e.Name() != "node_modules" {
				names = append(names, e.Name())
			}
		}
		return names
	}
	top := dirs("../..")
	if len(top) < 10 {
		t.Fatalf("only %d top-level folders: %v", len(top), top)
	}
	for _, d := range top {
		if !strings.Contains(layout, "`"+d+"/`") {
			t.Errorf("README's Layout does not name the folder %s/", d)
		}
	}
	for _, d := range dirs(filepath.Join("..", "..", "internal")) {
		if !strings.Contains(layout, "`"+d+"`") {
			t.Errorf("README's Layout does not name internal/%s", d)
		}
	}
}
