package speccheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var (
	// headingRE matches SPEC.md's numbered headings: "## 3. …", "### 3.2 …",
	// "#### 3.2.1 …".
	headingRE = regexp.MustCompile(`(?m)^#{2,5} (\d+(?:\.\d+)*)\.? `)
	// citationRE matches a citation outside SPEC.md.
	citationRE = regexp.MustCompile(`SPEC(?:\.md)? §(\d+(?:\.\d+)*)`)
	// innerRE matches a citation inside SPEC.md, except those of other
	// documents ("umbral-0.10 §6.3", "UAX #15 §13").
	innerRE = regexp.MustCompile(`(umbral-0\.10 |UAX #15 |RFC \d+ )?§(\d+(?:\.\d+)*)`)
	// oldRE matches citation styles that cannot be checked.
	oldRE = regexp.MustCompile(`SPEC\.md(?:,? section|, ")`)
)

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "SPEC.md")); err != nil {
		t.Fatalf("no SPEC.md at %s", dir)
	}
	return dir
}

func sections(spec string) map[string]bool {
	s := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(spec, -1) {
		s[m[1]] = true
	}
	return s
}

// problems lists the citations in text (of file name) that name no
// section, and the uncheckable citation styles.
func problems(name, text string, have map[string]bool) []string {
	var out []string
	line := func(off int) int { return strings.Count(text[:off], "\n") + 1 }
	if filepath.Base(name) == "SPEC.md" {
		for _, m := range innerRE.FindAllStringSubmatchIndex(text, -1) {
			if m[2] >= 0 {
				continue // another document's section
			}
			if n := text[m[4]:m[5]]; !have[strings.TrimSuffix(n, ".")] {
				out = append(out, name+":"+strconv.Itoa(line(m[0]))+": §"+n)
			}
		}
		return out
	}
	for _, m := range citationRE.FindAllStringSubmatchIndex(text, -1) {
		if n := text[m[2]:m[3]]; !have[strings.TrimSuffix(n, ".")] {
			out = append(out, name+":"+strconv.Itoa(line(m[0]))+": SPEC.md §"+n)
		}
	}
	for _, m := range oldRE.FindAllStringIndex(text, -1) {
		out = append(out, name+":"+strconv.Itoa(line(m[0]))+": cite sections as `SPEC.md §n`, not "+text[m[0]:m[1]])
	}
	return out
}

func TestSpecCitations(t *testing.T) {
	dir := root(t)
	spec, err := os.ReadFile(filepath.Join(dir, "SPEC.md"))
	if err != nil {
		t.Fatal(err)
	}
	have := sections(string(spec))
	if len(have) < 40 || !have["3.2.1"] || !have["7"] {
		t.Fatalf("found only %d numbered headings in SPEC.md: %v", len(have), have)
	}
	files, cited := 0, 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", ".testnet":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".sh", ".proto", ".js", ".json", ".yaml":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == filepath.Join("internal", "speccheck", "spec_test.go") {
			return nil // this file's own examples
		}
		files++
		cited += len(citationRE.FindAllString(string(b), -1))
		for _, p := range problems(rel, string(b), have) {
			t.Error(p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 || cited < 30 {
		t.Fatalf("read %d files with %d citations: the walk missed the tree", files, cited)
	}
}

// The check finds what it is meant to find.
func TestSpecCitationsCanFail(t *testing.T) {
	have := sections("## 3. policy\n### 3.2 Paths\n#### 3.2.1 Normalization\n")
	if p := problems("x.go", "see SPEC.md §3.2.1 and SPEC.md §3.2", have); len(p) != 0 {
		t.Fatalf("good citations refused: %v", p)
	}
	for _, bad := range []string{"see SPEC.md §3.9", "SPEC §4", `SPEC.md, "policy: paths"`, "SPEC.md section 3"} {
		if p := problems("x.go", bad, have); len(p) != 1 {
			t.Errorf("%q: %v", bad, p)
		}
	}
	if p := problems("SPEC.md", "as in §3.2, unlike umbral-0.10 §6.3 and §9", have); len(p) != 1 || !strings.Contains(p[0], "§9") {
		t.Errorf("inside SPEC.md: %v", p)
	}
}
