// Command kadre is kadre's one binary: the long-running node (`kadre run`)
// and the owner and recipient commands (keygen, grant, revoke, encrypt,
// decrypt, grants, status). See README.md for a quick start and SPEC.md for
// what it puts on the wire and on disk.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what every command gets: its arguments and standard streams, and
// the environment (a function, so tests can set it per call).
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// tty opens the controlling terminal for prompts.
	tty func() (*os.File, error)
}

func openTTY() (*os.File, error) { return os.OpenFile("/dev/tty", os.O_RDWR, 0) }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"run", "run a node", cmdRun},
		{"retire", "make a running node hand its fragments off and stop", cmdRetire},
		{"id", "print a node's peer ID and addresses (from its data directory)", cmdID},
		{"agent", "keep your identity unlocked and a warm client, with a local HTTP API", cmdAgent},
		{"keygen", "create a user identity", cmdKeygen},
		{"identity", "print this user's public identity", cmdIdentity},
		{"grant", "grant a recipient access to a path prefix", cmdGrant},
		{"revoke", "revoke a grant and collect the nodes' receipts", cmdRevoke},
		{"encrypt", "encrypt files under a path", cmdEncrypt},
		{"decrypt", "decrypt files (as their owner or as a recipient)", cmdDecrypt},
		{"grants", "list this owner's grants", cmdGrants},
		{"writer", "let others write under a prefix (add, revoke, list)", cmdWriter},
		{"migrate", "re-encrypt a version 1 file of yours as version 2", cmdMigrate},
		{"status", "show the network as this client sees it", cmdStatus},
		{"backup", "write a backup of a stopped node's identity and fragments", cmdBackup},
		{"restore", "restore a node's data directory from a backup", cmdRestore},
		{"version", "print the version", cmdVersion},
		{"help", "print the help of a command", nil},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kadre <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'kadre help <command>' or 'kadre <command> -h' for a command's flags; 'kadre --version' prints the version.")
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, tty: openTTY})
}

// runEnv runs one command. Exit codes: 0 success (and help asked for), 1
// the command failed, 2 the command line is wrong.
func runEnv(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return 0
	case "-version", "--version":
		args = []string{"version"}
	case "help":
		if len(args) == 1 {
			usage(e.stdout)
			return 0
		}
		// `kadre help grant` is `kadre grant -h`.
		args = []string{args[1], "-h"}
	}
	for _, c := range commands() {
		if c.name != args[0] || c.run == nil {
			continue
		}
		return exit(e, c.run(ctx, e, args[1:]))
	}
	fmt.Fprintf(e.stderr, "kadre: error: unknown command %q\n", args[0])
	fmt.Fprintln(e.stderr, "kadre: hint: run 'kadre help' for the list of commands")
	return 2
}

// exit prints a command's error and returns its exit code.
func exit(e *env, err error) int {
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errReported):
		return 1
	}
	code := 1
	if errors.Is(err, errUsage) {
		code = 2
		if err == errUsage {
			return code
		}
	}
	fmt.Fprintf(e.stderr, "kadre: error: %v\n", err)
	if h := explain.Hint(err); h != "" {
		fmt.Fprintf(e.stderr, "kadre: hint: %s\n", h)
	}
	return code
}

func cmdVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "version", "", "Prints the version.")
	if err := fs.parse(args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "kadre", version.Version)
	return nil
}
