package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"golang.org/x/term"

	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

func cmdEncrypt(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "encrypt", "-path </path/of/file> [in] [-o out]",
		"Encrypts a file (or standard input) under a path of the owner's hierarchy. Whoever holds a grant on a prefix of the path can decrypt it. Works offline.")
	u.bind(fs, e)
	path := fs.String("path", "", "the file's path in the owner's hierarchy, e.g. /docs/report.txt")
	out := fs.String("o", "", "output file (default: <in>.kadre, or standard output for standard input)")
	if err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	if *path == "" || fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	p, err := policy.NormalizePath(*path)
	if err != nil {
		return targetHint(err)
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	in, size, inName, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	if *out == "" && inName != "-" {
		*out = inName + ".kadre"
	}
	return writeOutput(e, *out, func(w io.Writer) error {
		return c.Encrypt(w, newProgress(e, in, size, "encrypting"), p)
	})
}

func cmdDecrypt(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "decrypt", "[in] [-o out]",
		"Decrypts a kadre file. Its owner decrypts offline; a recipient asks the nodes holding the grant's fragments and needs m of them to answer.")
	u.bind(fs, e)
	out := fs.String("o", "", "output file (default: standard output)")
	verbose := fs.Bool("v", false, "report every node's answer")
	if err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	in, size, _, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	fk, err := c.DecryptKey(ctx, in)
	if fk != nil && (err != nil || *verbose) {
		report(e, fk)
	}
	if err != nil {
		if fk != nil && fk.Nodes != nil {
			return withHint(err, "%s", collectHint(outcomes(fk)))
		}
		return fileHint(err)
	}
	if *verbose && !fk.ByOwner {
		fmt.Fprintf(e.stderr, "kadre: using the grant on %s (%d-of-%d)\n", fk.Prefix, fk.M, fk.N)
	}
	if size > 0 {
		size -= int64(fk.Header.Len())
	}
	r, err := kfile.NewReader(in, fk.Header, fk.DataKey)
	if err != nil {
		return err
	}
	return writeOutput(e, *out, func(w io.Writer) error {
		_, err := io.Copy(w, newProgress(e, r, size, "decrypting"))
		return err
	})
}

// outcomes classifies the answer of every node asked for a file's key.
func outcomes(fk *client.FileKey) map[string]dht.Outcome {
	m := map[string]dht.Outcome{}
	for p, err := range fk.Nodes {
		m[p.String()] = dht.Classify(err)
	}
	return m
}

// report prints each node's answer.
func report(e *env, fk *client.FileKey) {
	var lines []string
	for p, err := range fk.Nodes {
		lines = append(lines, fmt.Sprintf("kadre: node %s: %s", p, describe(err)))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(e.stderr, l)
	}
}

// parseInterleaved parses flags that may come after positional arguments.
func parseInterleaved(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// openInput opens a file or standard input ("-" or ""), with its size when
// known.
func openInput(e *env, name string) (io.ReadCloser, int64, string, error) {
	if name == "" || name == "-" {
		return io.NopCloser(e.stdin), -1, "-", nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, "", err
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, name, nil
}

// writeOutput runs fill on the output: standard output, or a temporary file
// renamed to name only when fill succeeded, so that a failed decryption
// never leaves a partial file behind.
func writeOutput(e *env, name string, fill func(io.Writer) error) error {
	if name == "" || name == "-" {
		return fill(e.stdout)
	}
	return fsx.Replace(name, 0o600, fill)
}

// progress reports bytes read on a terminal, twice a second.
type progress struct {
	r     io.Reader
	e     *env
	total int64
	done  int64
	what  string
	last  time.Time
	on    bool
}

func newProgress(e *env, r io.Reader, total int64, what string) io.Reader {
	f, ok := e.stderr.(*os.File)
	return &progress{r: r, e: e, total: total, what: what, on: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.on && (time.Since(p.last) > 500*time.Millisecond || err == io.EOF) {
		p.last = time.Now()
		if p.total > 0 {
			fmt.Fprintf(p.e.stderr, "\r%s %s / %s (%d%%)", p.what, bytesize(p.done), bytesize(p.total), min(100, 100*p.done/p.total))
		} else {
			fmt.Fprintf(p.e.stderr, "\r%s %s", p.what, bytesize(p.done))
		}
		if err == io.EOF {
			fmt.Fprintln(p.e.stderr)
		}
	}
	return n, err
}

func bytesize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
