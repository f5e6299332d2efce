package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/kadre/kadre/client"
)

// userFlags are the flags every user command shares.
type userFlags struct {
	home      string
	bootstrap string
	json      bool
}

func (u *userFlags) bind(fs *flag.FlagSet, e *env) {
	fs.StringVar(&u.home, "home", e.getenv("KADRE_HOME"), "kadre home directory with the identity and grants (env KADRE_HOME, default ~/.kadre)")
	fs.StringVar(&u.bootstrap, "bootstrap", e.getenv("KADRE_BOOTSTRAP"), "comma-separated node multiaddrs with /p2p/ (env KADRE_BOOTSTRAP, or client.json in the home directory)")
	fs.BoolVar(&u.json, "json", false, "print JSON")
}

func (u *userFlags) dir() (string, error) {
	if u.home != "" {
		return u.home, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", withHint(fmt.Errorf("no home directory: %w", err), "set KADRE_HOME or -home")
	}
	return filepath.Join(h, ".kadre"), nil
}

// open opens the user's client (identity from the home directory; the
// network is joined by the first command that needs it).
func (u *userFlags) open(e *env) (*client.Client, error) {
	home, err := u.dir()
	if err != nil {
		return nil, err
	}
	opt := client.Options{Home: home, Passphrase: passphraseFrom(e, "passphrase: ")}
	if u.bootstrap != "" {
		opt.Bootstrap = splitList(u.bootstrap)
	}
	c, err := client.Open(opt)
	if err != nil {
		return nil, identityHint(err)
	}
	return c, nil
}

func newFlagSet(e *env, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("kadre "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: kadre %s %s\n\n%s\n\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}

// passphraseFrom returns the passphrase from KADRE_PASSPHRASE or, on the
// terminal, a prompt.
func passphraseFrom(e *env, prompt string) client.Passphrase {
	return func() ([]byte, error) {
		if p := e.getenv("KADRE_PASSPHRASE"); p != "" {
			return []byte(p), nil
		}
		p, err := promptPassphrase(e, prompt)
		if err != nil {
			return nil, withHint(err, "set KADRE_PASSPHRASE")
		}
		return p, nil
	}
}

// errNoTerminal means a passphrase was needed and there is no terminal to
// ask it on.
var errNoTerminal = errors.New("a passphrase is needed and there is no terminal to ask")

// promptPassphrase asks on the controlling terminal, not on standard input
// and output, so that `kadre decrypt < file > out` works with a sealed
// identity.
func promptPassphrase(e *env, prompt string) ([]byte, error) {
	tty, err := e.tty()
	if err != nil {
		return nil, errNoTerminal
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, errNoTerminal
	}
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortID abbreviates identities and peer IDs for tables; every kadre
// identity starts with "kadre1q", so the head kept is longer than that.
func shortID(s string) string {
	if len(s) > 24 {
		return s[:14] + "…" + s[len(s)-6:]
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
