package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/term"

	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
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
		return withHint(err, "paths look like /docs/report.txt")
	}
	_, keys, err := u.keyring(e)
	if err != nil {
		return err
	}
	in, size, inName, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	if *out == "" && inName != "-" {
		*out = inName + ".kadre"
	}
	h, dataKey, err := kfile.NewHeader(policy.IdentityOf(keys).IdentityKey, p, kfile.LevelKeys(keys, p))
	if err != nil {
		return err
	}
	return writeOutput(e, *out, func(w io.Writer) error {
		kw, err := kfile.NewWriter(w, h, dataKey)
		if err != nil {
			return err
		}
		if _, err := io.Copy(kw, newProgress(e, in, size, "encrypting")); err != nil {
			return err
		}
		return kw.Close()
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
	h, err := kfile.ReadHeader(in)
	if err != nil {
		if errors.Is(err, kfile.ErrNotKadreFile) {
			return withHint(err, "decrypt takes a file made by `kadre encrypt`")
		}
		return err
	}
	_, keys, err := u.keyring(e)
	if err != nil {
		return err
	}
	me := policy.IdentityOf(keys)
	var dataKey []byte
	if h.Owner() == me.IdentityKey {
		// The owner opens the deepest level with its own path key.
		deepest := h.Levels() - 1
		dataKey, err = h.UnwrapOriginal(deepest, policy.DelegatingKey(keys, h.Path()))
		if err != nil {
			return err
		}
	} else {
		dataKey, err = u.fetchKey(ctx, e, keys, h, *verbose)
		if err != nil {
			return err
		}
	}
	if size > 0 {
		size -= int64(h.Len())
	}
	r, err := kfile.NewReader(in, h, dataKey)
	if err != nil {
		return err
	}
	return writeOutput(e, *out, func(w io.Writer) error {
		_, err := io.Copy(w, newProgress(e, r, size, "decrypting"))
		return err
	})
}

// fetchKey asks the network for cfrags of the file's levels and unwraps the
// data key, reporting per node why it failed when fewer than m succeed.
func (u *userFlags) fetchKey(ctx context.Context, e *env, keys *rekey.Keyring, h *kfile.Header, verbose bool) ([]byte, error) {
	s, err := u.connect(ctx, e)
	if err != nil {
		return nil, err
	}
	defer s.close()
	owner := h.Owner()
	var levels []dht.Level
	for i, prefix := range h.Path().Prefixes() {
		c, _, err := h.Level(i)
		if err != nil {
			return nil, err
		}
		levels = append(levels, dht.Level{PathHash: policy.ComputePathHash(owner, s.me.IdentityKey, prefix), Capsule: c})
	}
	col, err := s.host.Collect(ctx, owner, s.me, levels, dht.CollectOptions{})
	if col != nil && (err != nil || verbose) {
		report(e, col)
	}
	if err != nil {
		return nil, withHint(fmt.Errorf("cannot decrypt %s: %w", h.Path(), err), "%s", collectHint(col))
	}
	lvl := col.Level()
	delegating, vcs, err := col.Material()
	if err != nil {
		return nil, err
	}
	if verbose {
		fmt.Fprintf(e.stderr, "kadre: using the grant on %s (%d-of-%d) from %s\n", h.Path().Prefixes()[lvl],
			col.CFrags[0].Grant.Threshold, col.CFrags[0].Grant.Shares, plural(len(vcs), "node", "nodes"))
	}
	return h.UnwrapReencrypted(lvl, keys.Receiving(), delegating, vcs)
}

// report prints each node's failure.
func report(e *env, col *dht.Collection) {
	var lines []string
	for p, err := range col.Outcomes {
		what := "ok"
		if err != nil {
			what = describe(err)
		}
		lines = append(lines, fmt.Sprintf("kadre: node %s: %s", p, what))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(e.stderr, l)
	}
}

// collectHint says what to do after a failed collection, from the most
// telling answers.
func collectHint(col *dht.Collection) string {
	counts := map[string]int{}
	if col != nil {
		for _, err := range col.Outcomes {
			if err != nil {
				counts[describe(err)]++
			}
		}
	}
	switch {
	case counts["revoked"] > 0:
		return "the owner revoked this grant; ask them for a new one"
	case counts["expired"] > 0:
		return "the grant expired; ask the owner to grant again"
	case counts["not granted"] > 0:
		return "no grant covers this file's path for your identity; ask the owner to grant a prefix of it to `kadre identity`"
	}
	return "too few nodes holding the grant answered; check `kadre status` and try again"
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
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
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
