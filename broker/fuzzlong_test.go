package broker

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestFuzzLongRunsTheTable backs SECURITY.md ("make fuzz-long runs every
// target of the table above"): the Makefile's FUZZ_TARGETS name exactly
// the targets of SECURITY.md's fuzz table, each in its package.
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
}
