package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kadre/kadre/internal/explain"
)

// The CLI's user interface rules in one place: errors are printed as
// "kadre: error: …", followed by "kadre: hint: …" when there is something
// to do next (package explain, which the agent's API shares, so that both
// say the same); with -json a failure is the explain.Problem as JSON on
// standard output. Help (-h, `kadre help <command>`) goes to standard
// output and exits 0; a wrong command line says what is wrong and exits 2.

var (
	// errUsage means the command line is wrong (exit 2).
	errUsage = errors.New("usage")
	// errHelp means help was asked for and printed (exit 0).
	errHelp = errors.New("help")
	// errReported means the command printed its own failure report (a
	// many-file summary, a JSON problem): exit 1, nothing more to print.
	errReported = errors.New("failure reported")
)

// usageError is a wrong command line: its message, exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// badUsage returns a usageError.
func badUsage(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func withHint(err error, format string, args ...any) error {
	return explain.WithHint(err, format, args...)
}

// flagSet is a command's flags with kadre's help and error rules.
type flagSet struct {
	*flag.FlagSet
	e                 *env
	name, args, about string
}

func newFlagSet(e *env, name, args, about string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("kadre "+name, flag.ContinueOnError), e: e, name: name, args: args, about: about}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// synopsis is the command's one-line usage.
func (fs *flagSet) synopsis() string {
	return strings.TrimSpace("kadre " + fs.name + " " + fs.args)
}

// help prints the command's usage and every flag with its default.
func (fs *flagSet) help(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", fs.synopsis(), fs.about)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses args; flags may come after positional arguments. -h prints
// the help on standard output (errHelp); a bad flag or value is an
// errUsage error naming it.
func (fs *flagSet) parse(args []string) error {
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.help(fs.e.stdout)
				return errHelp
			}
			return explain.WithHint(badUsage("%v", err), "run `kadre %s -h` for its flags", fs.name)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append(append([]string{"--"}, pos...), tail...))
}

// noArgs refuses positional arguments.
func (fs *flagSet) noArgs() error {
	if fs.NArg() > 0 {
		return explain.WithHint(badUsage("unexpected argument %q", fs.Arg(0)), "usage: %s", fs.synopsis())
	}
	return nil
}

// missing reports the required flags (those set to true) that were not
// given, with the command's synopsis as the hint.
func missing(fs *flagSet, flags map[string]bool) error {
	var names []string
	for name, absent := range flags {
		if absent {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return explain.WithHint(badUsage("missing %s", strings.Join(names, " and ")), "usage: %s", fs.synopsis())
}
