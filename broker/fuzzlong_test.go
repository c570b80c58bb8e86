package broker

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFuzzLongRunsTheTable backs SECURITY.md ("make fuzz-long runs every
// target of the table above"): the Makefile's FUZZ_TARGETS name exactly
// the targets of SECURITY.md's fuzz table, each in its package, and the
// table names every fuzz target of the repository.
func TestFuzzLongRunsTheTable(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := os.ReadFile("../SECURITY.md")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`\./([a-z/]*?)/?:(Fuzz[A-Za-z]+)`).FindAllStringSubmatch(string(mk), -1) {
		listed = append(listed, m[1]+" "+m[2])
	}
	table := string(sec)[strings.Index(string(sec), "## Fuzzing"):]
	var documented []string
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "Fuzz") {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[2]), "`")
		for _, name := range strings.Split(cells[1], ",") {
			documented = append(documented, pkg+" "+strings.TrimSpace(name))
		}
	}
	slices.Sort(listed)
	slices.Sort(documented)
	if len(listed) == 0 || !slices.Equal(listed, documented) {
		t.Errorf("Makefile FUZZ_TARGETS %q\nSECURITY.md fuzz table %q", listed, documented)
	}
	if defined := fuzzTargets(t, ".."); !slices.Equal(defined, documented) {
		t.Errorf("fuzz targets in the repository %q\nSECURITY.md fuzz table %q", defined, documented)
	}
}

// fuzzTargets lists "package Target" for every func FuzzX in the test
// files under root, sorted.
func fuzzTargets(t *testing.T, root string) []string {
	t.Helper()
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z]+)\(`)
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		pkg, _ := filepath.Rel(root, filepath.Dir(path))
		for _, m := range fuzzFunc.FindAllSubmatch(b, -1) {
			found = append(found, filepath.ToSlash(pkg)+" "+string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	return found
}
