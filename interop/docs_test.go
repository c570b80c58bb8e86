package interop

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// snippetMarker precedes a code block of docs/rp.md: "file" means the block
// is that file, byte for byte; "excerpt" means its lines appear, in order and
// contiguous, in that file (indentation aside, for an excerpt of a function).
var snippetMarker = regexp.MustCompile(`^<!-- (file|excerpt): (\S+) -->$`)

// TestDocSnippetsAreTheTestedCode checks that the code docs/rp.md shows is
// the code the interop tests run (interop/goapi, interop/node/api.mjs,
// interop/python/bkjwt.py and django_api.py) or compile and test (rp's
// examples, rp's SQL replay cache):
// every go, js or python block names its file, and matches it.
func TestDocSnippetsAreTheTestedCode(t *testing.T) {
	doc, err := os.ReadFile("../docs/rp.md")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"interop/goapi/main.go":        "file",
		"rp/example_test.go":           "excerpt",
		"rp/replaycache_test.go":       "excerpt",
		"interop/node/api.mjs":         "file",
		"interop/python/bkjwt.py":      "file",
		"interop/python/django_api.py": "excerpt",
	}
	seen := map[string]bool{}
	lines := strings.Split(string(doc), "\n")
	var kind, path string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := snippetMarker.FindStringSubmatch(line); m != nil {
			kind, path = m[1], m[2]
			continue
		}
		if !strings.HasPrefix(line, "```") {
			if strings.TrimSpace(line) != "" {
				kind, path = "", ""
			}
			continue
		}
		lang := strings.TrimPrefix(line, "```")
		start := i + 1
		for i++; i < len(lines) && lines[i] != "```"; i++ {
		}
		block := strings.Join(lines[start:i], "\n") + "\n"
		if path == "" {
			if lang == "go" || lang == "js" || lang == "python" {
				t.Errorf("docs/rp.md line %d: a %s block with no <!-- file: … --> or <!-- excerpt: … --> marker: an untested snippet", start, lang)
			}
			continue
		}
		seen[path] = true
		if want[path] != kind {
			t.Errorf("docs/rp.md line %d: %s %s, want %q", start, kind, path, want[path])
		}
		src, err := os.ReadFile(filepath.Join("..", path))
		if err != nil {
			t.Errorf("docs/rp.md line %d: %v", start, err)
			continue
		}
		switch kind {
		case "file":
			if block != string(src) {
				t.Errorf("docs/rp.md line %d: the block differs from %s; paste the file into the document", start, path)
			}
		case "excerpt":
			if !containsExcerpt(string(src), block) {
				t.Errorf("docs/rp.md line %d: the block is not an excerpt of %s:\n%s", start, path, block)
			}
		}
		kind, path = "", ""
	}
	for path := range want {
		if !seen[path] {
			t.Errorf("docs/rp.md shows no block of %s", path)
		}
	}
}

// containsExcerpt reports whether excerpt's lines appear contiguous in src,
// both with their common indentation removed.
func containsExcerpt(src, excerpt string) bool {
	want := dedent(strings.Split(strings.TrimRight(excerpt, "\n"), "\n"))
	have := strings.Split(src, "\n")
	for i := 0; i+len(want) <= len(have); i++ {
		got := dedent(have[i : i+len(want)])
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return true
		}
	}
	return false
}

func dedent(lines []string) []string {
	prefix, set := "", false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if !set {
			prefix, set = indent, true
			continue
		}
		for !strings.HasPrefix(indent, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			out[i] = strings.TrimPrefix(l, prefix)
		}
	}
	return out
}
