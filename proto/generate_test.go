package proto

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// The committed kadre.pb.go must be what scripts/gen-proto.sh makes from
// kadre.proto. Skipped where protoc or protoc-gen-go is not installed (the
// build never needs them).
func TestGeneratedCodeUpToDate(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not installed")
	}
	plugin, err := exec.LookPath("protoc-gen-go")
	if err != nil {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		plugin = filepath.Join(string(bytes.TrimSpace(out)), "bin", "protoc-gen-go")
		if _, err := os.Stat(plugin); err != nil {
			t.Skip("protoc-gen-go not installed")
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(protoc, "--plugin=protoc-gen-go="+plugin, "--proto_path=.",
		"--go_out="+dir, "--go_opt=paths=source_relative", "kadre.proto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "kadre.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("kadre.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	// The header names the tool versions; only the code must match.
	versions := regexp.MustCompile(`(?m)^// \tprotoc(-gen-go)? +v.*$`)
	if !bytes.Equal(versions.ReplaceAll(got, nil), versions.ReplaceAll(want, nil)) {
		t.Fatal("kadre.pb.go is stale: run scripts/gen-proto.sh and commit the result")
	}
}
