package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kadre/kadre/client"
)

// The CLI as a new user meets it, in this process (no network): help,
// versions, what a wrong command line says, and the terminal.

type cliRun struct {
	stdout, stderr string
	code           int
}

// runCLI runs one command with the environment vars, standard input in
// and the terminal tty (nil: none).
func runCLI(vars map[string]string, in io.Reader, tty *os.File, args ...string) cliRun {
	var out, errb bytes.Buffer
	if in == nil {
		in = strings.NewReader("")
	}
	e := &env{stdin: in, stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }, tty: noTTY}
	if tty != nil {
		e.tty = func() (*os.File, error) { return os.OpenFile(tty.Name(), os.O_RDWR, 0) }
	}
	code := runEnv(context.Background(), args, e)
	return cliRun{out.String(), errb.String(), code}
}

func TestHelpAndVersion(t *testing.T) {
	vars := map[string]string{"KADRE_HOME": t.TempDir(), "KADRE_BOOTSTRAP": "/ip4/127.0.0.1/tcp/1/p2p/16Uiu2HAmNfrn8YQbKajWt8nxiCn9RGKPycGHZNg5NbD2qeikmvFK"}
	for _, args := range [][]string{{"help", "grant"}, {"grant", "-h"}, {"grant", "--help"}} {
		r := runCLI(vars, nil, nil, args...)
		if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: kadre grant -to <identity> -path </prefix>") || !strings.Contains(r.stdout, "-expires") {
			t.Fatalf("%v: exit %d\nstdout %q\nstderr %q", args, r.code, r.stdout, r.stderr)
		}
		// The environment's bootstrap list is not shown as a default.
		if strings.Contains(r.stdout, "16Uiu2HAmNfrn8") {
			t.Fatalf("%v shows the environment as a default", args)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		if r := runCLI(vars, nil, nil, args...); r.code != 0 || !strings.Contains(r.stdout, "usage: kadre <command>") || r.stderr != "" {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	if r := runCLI(vars, nil, nil); r.code != 2 || !strings.Contains(r.stderr, "usage: kadre <command>") {
		t.Fatalf("no command: %+v", r)
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		if r := runCLI(vars, nil, nil, args...); r.code != 0 || !strings.HasPrefix(r.stdout, "kadre ") {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	// kadre run -h shows every setting with its default.
	r := runCLI(vars, nil, nil, "run", "-h")
	for _, want := range []string{"(default 90d)", "(default 127.0.0.1:4711)", "(default kadre-node)", "(default 1000000)", "(default 200)", "(default 24,48)"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("run -h lacks %q:\n%s", want, r.stdout)
		}
	}
	// Offline commands offer no network flag.
	for _, cmd := range []string{"encrypt", "keygen", "writer add", "writer list"} {
		r := runCLI(vars, nil, nil, append(strings.Fields(cmd), "-h")...)
		if r.code != 0 || strings.Contains(r.stdout, "-bootstrap") {
			t.Fatalf("%s -h:\n%s", cmd, r.stdout)
		}
	}
	if r := runCLI(vars, nil, nil, "help", "nothing"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "nothing"`) {
		t.Fatalf("help of an unknown command: %+v", r)
	}
}

// A wrong command line says what is wrong, in one line and a hint, never
// the whole usage.
func TestWrongCommandLines(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{"KADRE_HOME": home}
	if _, err := client.CreateIdentity(home, nil, false); err != nil {
		t.Fatal(err)
	}
	bob := strings.TrimSpace(runCLI(map[string]string{"KADRE_HOME": t.TempDir()}, nil, nil, "keygen").stdout)
	for _, tc := range []struct {
		args []string
		code int
		err  string
		hint string
	}{
		{[]string{"grant", "-to", bob}, 2, "kadre: error: missing -path\n", "kadre: hint: usage: kadre grant -to <identity>"},
		{[]string{"grant"}, 2, "kadre: error: missing -path and -to\n", "kadre: hint: usage: kadre grant"},
		{[]string{"revoke", "-path", "/docs"}, 2, "kadre: error: missing -to\n", "kadre: hint: usage: kadre revoke"},
		{[]string{"encrypt", "in.txt"}, 2, "kadre: error: missing -path\n", "kadre: hint: usage: kadre encrypt"},
		{[]string{"backup"}, 2, "kadre: error: missing -o\n", "kadre: hint: usage: kadre backup"},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-m", "3", "-n", "40"}, 1, "n=40: a grant has at most 32 fragments", "kadre: hint: -m is how many"},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-m", "6", "-n", "5"}, 1, "m=6 is more than n=5", ""},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-m", "0"}, 1, "m=0: a grant needs at least 1 fragment", ""},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-expires", "soon"}, 1, `invalid grant expiry: "soon" is neither a duration`, "kadre: hint: -expires takes a duration (30d, 12h, 2w, 1y) or a date"},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-expires", "0s"}, 1, `invalid grant expiry: "0s" is not a duration from now`, ""},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-expires", "2001-01-01"}, 1, "not at least a minute from now", ""},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-bogus"}, 2, "kadre: error: flag provided but not defined: -bogus\n", "kadre: hint: run `kadre grant -h` for its flags"},
		{[]string{"grant", "-to", bob, "-path", "/docs", "-m", "three"}, 2, `invalid value "three" for flag -m`, "kadre: hint: run `kadre grant -h`"},
		{[]string{"grant", "-to", bob, "-path", "/docs", "extra"}, 2, `unexpected argument "extra"`, ""},
		{[]string{"grant", "-to", "kadre1nope", "-path", "/docs"}, 1, "invalid identity", "kadre: hint: the recipient prints their identity"},
		{[]string{"decrypt", "-r"}, 2, "-r needs directories or files", ""},
		{[]string{"decrypt", home}, 2, "is a directory", "kadre: hint: pass -r"},
		{[]string{"writer"}, 2, "missing subcommand", "kadre: hint: usage: kadre writer add"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(vars, nil, nil, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.err) || !strings.Contains(r.stderr, tc.hint) {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if strings.Contains(r.stderr, "flags:") || strings.Contains(r.stderr, "-bootstrap") || strings.Count(r.stderr, "\n") > 2 {
				t.Fatalf("the whole usage was printed:\n%s", r.stderr)
			}
		})
	}
	// With -json a failure is a problem on standard output.
	r := runCLI(vars, nil, nil, "decrypt", "-json", "-key-only", filepath.Join(home, "identity.json"))
	if r.code != 1 || !strings.Contains(r.stdout, `"code": "NOT_KADRE_FILE"`) || !strings.Contains(r.stdout, `"hint": "decrypt takes a file made by`) {
		t.Fatalf("decrypt -json of a file that is not kadre's: %+v", r)
	}
}

// openPTY opens a pseudo-terminal: the test writes to master what a user
// types on the terminal slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	go io.Copy(io.Discard, m) // the prompts
	return m, s
}

// type types a line on the terminal once the program asks.
func typeLine(t *testing.T, master *os.File, line string, after time.Duration) {
	go func() {
		time.Sleep(after)
		master.Write([]byte(line + "\n"))
	}()
}

// Passphrases are asked on the terminal, not standard input: a sealed
// identity decrypts a file given on standard input; without a terminal,
// keygen says it cannot ask for the new passphrase and what to do.
func TestTerminal(t *testing.T) {
	home := t.TempDir()
	vars := map[string]string{"KADRE_HOME": home}
	r := runCLI(vars, nil, nil, "keygen", "-passphrase")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot ask for the new identity's passphrase: there is no terminal") ||
		!strings.Contains(r.stderr, "kadre: hint: set KADRE_PASSPHRASE to the passphrase to seal the identity with") {
		t.Fatalf("keygen without a terminal: %+v", r)
	}
	master, slave := openPTY(t)
	typeLine(t, master, "correct horse battery", 0)
	typeLine(t, master, "correct horse battery", 300*time.Millisecond)
	if r := runCLI(vars, nil, slave, "keygen", "-passphrase"); r.code != 0 || !strings.HasPrefix(r.stdout, "kadre1") {
		t.Fatalf("keygen on a terminal: %+v", r)
	}
	if !client.IsSealed(home) {
		t.Fatal("the identity is not sealed")
	}
	// Encrypting to standard output that is a terminal is refused (before
	// the passphrase is asked).
	var errb bytes.Buffer
	e := &env{stdin: strings.NewReader("plain"), stdout: slave, stderr: &errb, getenv: func(k string) string { return vars[k] }, tty: noTTY}
	if code := runEnv(context.Background(), []string{"encrypt", "-path", "/x"}, e); code != 1 || !strings.Contains(errb.String(), "refusing to write a kadre file (binary) to a terminal") {
		t.Fatalf("encrypt to a terminal: exit %d: %s", code, errb.String())
	}
	// Encrypt a file, then decrypt it from standard input: the passphrase
	// comes from the terminal.
	plain := filepath.Join(t.TempDir(), "p.txt")
	os.WriteFile(plain, []byte("sealed and typed"), 0o600)
	typeLine(t, master, "correct horse battery", 0)
	if r := runCLI(vars, nil, slave, "encrypt", "-path", "/docs/p.txt", plain); r.code != 0 {
		t.Fatalf("encrypt: %+v", r)
	}
	f, err := os.Open(plain + ".kadre")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	typeLine(t, master, "correct horse battery", 0)
	if r := runCLI(vars, f, slave, "decrypt"); r.code != 0 || r.stdout != "sealed and typed" {
		t.Fatalf("decrypt < file with a sealed identity: %+v", r)
	}
}
