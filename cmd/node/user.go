package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/rekey"
)

// userFlags are the flags user commands share; each command binds the
// ones that mean something for it.
type userFlags struct {
	home      string
	bootstrap string
	json      bool
	noAgent   bool
	e         *env
}

// bindHome binds -home.
func (u *userFlags) bindHome(fs *flagSet, e *env) {
	u.e = e
	fs.StringVar(&u.home, "home", "", "kadre home directory with the identity and grants (env KADRE_HOME; default ~/.kadre)")
}

// bindAgent binds -no-agent.
func (u *userFlags) bindAgent(fs *flagSet) {
	fs.BoolVar(&u.noAgent, "no-agent", false, "do not use a running kadre agent (env KADRE_NO_AGENT=1)")
}

// bindNetwork binds -bootstrap.
func (u *userFlags) bindNetwork(fs *flagSet) {
	fs.StringVar(&u.bootstrap, "bootstrap", "", "comma-separated node multiaddrs with /p2p/ (env KADRE_BOOTSTRAP, or client.json in the home directory; a running agent uses its own)")
}

// bindJSON binds -json.
func (u *userFlags) bindJSON(fs *flagSet) {
	fs.BoolVar(&u.json, "json", false, "print JSON (a failure too: {\"error\": {code, message, hint}})")
}

// bind binds -home, -no-agent, -bootstrap and -json.
func (u *userFlags) bind(fs *flagSet, e *env) {
	u.bindHome(fs, e)
	u.bindAgent(fs)
	u.bindNetwork(fs)
	u.bindJSON(fs)
}

func (u *userFlags) dir() (string, error) {
	if u.home != "" {
		return u.home, nil
	}
	if h := u.e.getenv("KADRE_HOME"); h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", withHint(fmt.Errorf("no home directory: %w", err), "set KADRE_HOME or -home")
	}
	return filepath.Join(h, ".kadre"), nil
}

func (u *userFlags) bootstrapAddrs() []string {
	if u.bootstrap != "" {
		return splitList(u.bootstrap)
	}
	if v := u.e.getenv("KADRE_BOOTSTRAP"); v != "" {
		return splitList(v)
	}
	return nil
}

// open opens the user's client (identity from the home directory; the
// network is joined by the first command that needs it).
func (u *userFlags) open(e *env) (*client.Client, error) {
	home, err := u.dir()
	if err != nil {
		return nil, err
	}
	return client.Open(client.Options{Home: home, Passphrase: passphraseFrom(e), Bootstrap: u.bootstrapAddrs()})
}

// useAgent reports whether the command may use a running agent.
func (u *userFlags) useAgent() bool {
	return !u.noAgent && u.e.getenv("KADRE_NO_AGENT") != "1"
}

// agentFor returns the agent serving the home directory, nil if none.
func (u *userFlags) agentFor(ctx context.Context) (*agent.Remote, error) {
	if !u.useAgent() {
		return nil, nil
	}
	home, err := u.dir()
	if err != nil {
		return nil, err
	}
	return agent.Discover(ctx, home)
}

// backend returns what the command runs against: the agent serving the
// home directory if one runs, else a client of its own.
func (u *userFlags) backend(ctx context.Context, e *env) (agent.Backend, error) {
	r, err := u.agentFor(ctx)
	if err != nil {
		return nil, err
	}
	if r != nil {
		return r, nil
	}
	c, err := u.open(e)
	if err != nil {
		return nil, err
	}
	return &agent.Local{C: c}, nil
}

// anonymous opens a client with a throwaway identity, for commands that
// need none (status on a machine without a user identity).
func (u *userFlags) anonymous() (agent.Backend, error) {
	home, err := u.dir()
	if err != nil {
		return nil, err
	}
	seed := make([]byte, rekey.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	keys, err := rekey.NewKeyring(seed)
	if err != nil {
		return nil, err
	}
	c, err := client.Open(client.Options{Home: home, Keyring: keys, Bootstrap: u.bootstrapAddrs()})
	if err != nil {
		return nil, err
	}
	return &agent.Local{C: c, Anonymous: true}, nil
}

// fail reports a failure: with -json as the problem on standard output
// (errReported), else as the error itself, for exit to print.
func (u *userFlags) fail(err error, extra map[string]any) error {
	if err == nil || !u.json || errors.Is(err, errUsage) || errors.Is(err, errHelp) {
		return err
	}
	out := map[string]any{"error": explain.Of(err)}
	for k, v := range extra {
		out[k] = v
	}
	printJSON(u.e.stdout, out)
	return errReported
}

// passphraseFrom returns the passphrase of a sealed identity from
// KADRE_PASSPHRASE or, on the terminal, a prompt.
func passphraseFrom(e *env) client.Passphrase {
	return func() ([]byte, error) {
		if p := e.getenv("KADRE_PASSPHRASE"); p != "" {
			return []byte(p), nil
		}
		p, err := promptPassphrase(e, "passphrase: ")
		if errors.Is(err, errNoTerminal) {
			return nil, explain.WithCode("PASSPHRASE_NEEDED", errors.New("the identity is sealed with a passphrase and there is no terminal to ask it on"),
				"set KADRE_PASSPHRASE, or start `kadre agent` once on a terminal: commands then use it without asking")
		}
		return p, err
	}
}

// newPassphrase returns the passphrase to seal a new identity with: from
// KADRE_PASSPHRASE, or asked twice on the terminal.
func newPassphrase(e *env) ([]byte, error) {
	if p := e.getenv("KADRE_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	p, err := promptPassphrase(e, "new passphrase: ")
	if errors.Is(err, errNoTerminal) {
		return nil, explain.WithCode("PASSPHRASE_NEEDED", errors.New("cannot ask for the new identity's passphrase: there is no terminal"),
			"set KADRE_PASSPHRASE to the passphrase to seal the identity with")
	}
	if err != nil {
		return nil, err
	}
	again, err := promptPassphrase(e, "again: ")
	if err != nil {
		return nil, err
	}
	if string(again) != string(p) {
		return nil, withHint(errors.New("the two passphrases differ"), "run `kadre keygen -passphrase` again")
	}
	return p, nil
}

// errNoTerminal means a passphrase was needed and there is no terminal to
// ask it on.
var errNoTerminal = errors.New("no terminal")

// promptPassphrase asks on the controlling terminal (/dev/tty), not on
// standard input and output, so that `kadre decrypt < file > out` works
// with a sealed identity.
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

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
