package fsx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A batch shows nothing under the files' names before Commit, every file
// whole after it; a file whose fill fails, or whose name is taken by a
// directory, fails alone; Abort leaves no temporary file.
func TestBatch(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	var b Batch
	var paths []string
	for i := range 20 {
		p := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if i%2 == 1 {
			p = filepath.Join(sub, fmt.Sprintf("f%d", i))
		}
		content := strings.Repeat(fmt.Sprint(i), 100)
		if err := b.Add(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, content); return err }); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	boom := errors.New("boom")
	failed := filepath.Join(dir, "failed")
	if err := b.Add(failed, 0o600, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("a failing fill: %v", err)
	}
	taken := filepath.Join(dir, "taken")
	os.Mkdir(taken, 0o700)
	os.WriteFile(filepath.Join(taken, "x"), []byte("x"), 0o600)
	if err := b.Add(taken, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s exists before Commit", p)
		}
	}
	errs := b.Commit()
	for i, p := range paths {
		got, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		if errs[p] != nil || err != nil || string(got) != strings.Repeat(fmt.Sprint(i), 100) || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s after Commit: %v %v %q", p, errs[p], err, got)
		}
	}
	if errs[taken] == nil {
		t.Fatal("a rename over a directory succeeded")
	}
	if _, ok := errs[failed]; ok {
		t.Fatal("a failed fill was committed")
	}
	if _, err := os.Stat(failed); !os.IsNotExist(err) {
		t.Fatal("a failed fill left its file")
	}
	// Abort: the files added are gone, nothing was placed.
	p := filepath.Join(dir, "aborted")
	b.Add(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err })
	b.Abort()
	for _, d := range []string{dir, sub} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp") || e.Name() == "aborted" {
				t.Fatalf("%s left in %s", e.Name(), d)
			}
		}
	}
	if len(b.Commit()) != 0 {
		t.Fatal("a committed batch commits again")
	}
}
