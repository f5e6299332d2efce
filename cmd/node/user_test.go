package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kadre/kadre/client"
)

// A passphrase-sealed identity opens with its passphrase only, and the
// file never holds the seed in clear.
func TestKeygenPassphrase(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{"KADRE_HOME": home, "KADRE_PASSPHRASE": "correct horse battery"}
	run := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := runEnv(context.Background(), args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			getenv: func(k string) string { return vars[k] }, tty: noTTY})
		return out.String(), errb.String(), code
	}
	id, stderr, code := run("keygen", "-passphrase")
	if code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	doc, err := os.ReadFile(filepath.Join(home, client.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(`"kdf": "argon2id"`)) || bytes.Contains(doc, []byte(`"seed"`)) {
		t.Fatalf("identity file is not sealed:\n%s", doc)
	}
	if got, _, code := run("identity"); code != 0 || got != id {
		t.Fatalf("identity with the passphrase: %q (exit %d), keygen said %q", got, code, id)
	}
	vars["KADRE_PASSPHRASE"] = "wrong horse battery"
	if _, stderr, code := run("identity"); code != 1 || !strings.Contains(stderr, "wrong passphrase") || !strings.Contains(stderr, "kadre: hint:") {
		t.Fatalf("wrong passphrase: exit %d: %s", code, stderr)
	}
	delete(vars, "KADRE_PASSPHRASE")
	if _, stderr, code := run("identity"); code != 1 || !strings.Contains(stderr, "KADRE_PASSPHRASE") {
		t.Fatalf("no passphrase and no terminal: exit %d: %s", code, stderr)
	}
	// A short passphrase is refused and leaves nothing behind.
	home2 := t.TempDir()
	vars["KADRE_HOME"], vars["KADRE_PASSPHRASE"] = home2, "short"
	if _, stderr, code := run("keygen", "-passphrase"); code != 1 || !strings.Contains(stderr, "shorter than 8") {
		t.Fatalf("short passphrase: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(home2, client.IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused keygen wrote an identity")
	}
}

func noTTY() (*os.File, error) { return nil, errors.New("no terminal in tests") }
