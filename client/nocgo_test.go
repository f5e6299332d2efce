package client_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// unbuildableWithoutCgo lists the non-standard packages that pkg depends on
// which have no Go file left when cgo is off (their files all need cgo), or
// fail to load: a CGO_ENABLED=0 build of pkg would fail on each of them.
// go list does not compile, so the check is quick.
func unbuildableWithoutCgo(t *testing.T, pkg string) (bad []string, deps int) {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-f", "{{.ImportPath}}|{{.Standard}}|{{len .GoFiles}}|{{if .Error}}{{.Error}}{{end}}", pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pkg, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "|", 4)
		if len(f) != 4 {
			t.Fatalf("go list printed %q", line)
		}
		deps++
		if f[1] == "false" && (f[2] == "0" || f[3] != "") {
			bad = append(bad, f[0])
		}
	}
	return bad, deps
}

// A program that imports the client builds without cgo: none of its
// dependencies needs cgo, and none is kadre's store, its node or LMDB.
func TestNoCgo(t *testing.T) {
	bad, deps := unbuildableWithoutCgo(t, "./testdata/nocgo")
	if len(bad) > 0 {
		t.Errorf("with CGO_ENABLED=0 these dependencies of a client program do not build: %v", bad)
	}
	if deps < 50 {
		t.Fatalf("go list listed only %d packages", deps)
	}
	out, err := exec.Command("go", "list", "-deps", "./testdata/nocgo").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "lmdb") || p == "github.com/kadre/kadre/store" || p == "github.com/kadre/kadre/node" {
			t.Errorf("a client program depends on %s", p)
		}
	}
	// The check can fail: the node links LMDB, which needs cgo.
	bad, _ = unbuildableWithoutCgo(t, "../cmd/node")
	if len(bad) != 1 || bad[0] != "github.com/bmatsuo/lmdb-go/lmdb" {
		t.Fatalf("without cgo the node should miss exactly LMDB, the check found %v", bad)
	}
}
