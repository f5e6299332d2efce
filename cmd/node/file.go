package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
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
	fs := newFlagSet(e, "encrypt", "-path </path/of/file> [-writer <certificate>] [in] [-o out]",
		"Encrypts a file (or standard input) under a path of the owner's hierarchy, signed by you. Whoever holds a grant on a prefix of the path can decrypt it. The owner encrypts with her own keys; anyone else needs a writer certificate from her (kadre writer add). Works offline.")
	u.bind(fs, e)
	path := fs.String("path", "", "the file's path in the owner's hierarchy, e.g. /docs/report.txt")
	out := fs.String("o", "", "output file (default: <in>.kadre, or standard output for standard input)")
	writer := fs.String("writer", "", "a writer certificate from the owner (kadrewriter1…, or @file holding one): write as that writer")
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
	var cert *policy.WriterCert
	if *writer != "" {
		if cert, err = readWriterCert(*writer); err != nil {
			return err
		}
	}
	return writeOutput(e, *out, func(w io.Writer) error {
		src := newProgress(e, in, size, "encrypting")
		if cert != nil {
			return c.EncryptAs(w, src, p, cert)
		}
		return c.Encrypt(w, src, p)
	})
}

// readWriterCert parses a -writer value: a certificate string, or @file.
func readWriterCert(v string) (*policy.WriterCert, error) {
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		v = string(b)
	}
	cert, err := policy.ParseWriterCertString(v)
	if err != nil {
		return nil, withHint(err, "a writer certificate is the kadrewriter1… string `kadre writer add` printed for you")
	}
	return cert, nil
}

func cmdDecrypt(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "decrypt", "[in] [-o out] [-range start-end] [-key-only]",
		"Decrypts a kadre file after checking who wrote it. Its owner decrypts offline; a recipient asks the nodes holding the grant's fragments and needs m of them to answer.")
	u.bind(fs, e)
	out := fs.String("o", "", "output file (default: standard output)")
	verbose := fs.Bool("v", false, "report every node's answer")
	keyOnly := fs.Bool("key-only", false, "print the file's keys and layout as JSON instead of the plaintext, for applications that decrypt the body themselves")
	byteRange := fs.String("range", "", "decrypt only bytes start-end of the plaintext (end exclusive, either may be omitted: 100-, -4096); needs a file, not standard input")
	allowUnsigned := fs.Bool("allow-unsigned", false, "accept version 1 files, which nobody signed")
	if err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	in, size, name, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	var from, to int64 = 0, -1
	if *byteRange != "" {
		if name == "-" {
			return withHint(errors.New("-range needs a file to read from"), "pass the file's name instead of standard input")
		}
		if from, to, err = parseRange(*byteRange); err != nil {
			return err
		}
	}
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	fk, err := c.DecryptKey(ctx, in, client.DecryptOptions{AllowUnsigned: *allowUnsigned})
	if fk != nil && fk.Nodes != nil && (err != nil || *verbose) {
		report(e, fk)
	}
	if err != nil {
		if fk != nil && fk.Nodes != nil {
			return withHint(err, "%s", collectHint(outcomes(fk)))
		}
		return fileHint(err)
	}
	if *verbose && !fk.ByOwner {
		fmt.Fprintf(e.stderr, "kadre: using the grant on %s (%d-of-%d, key epoch %d)\n", fk.Prefix, fk.M, fk.N, fk.Epoch)
	}
	fmt.Fprintf(e.stderr, "kadre: %s\n", describeWriter(fk))
	if *keyOnly {
		return printKey(e, *out, fk)
	}
	if *byteRange != "" {
		f, ok := in.(*os.File)
		if !ok {
			return errors.New("-range needs a file")
		}
		ra, err := kfile.NewReaderAt(f, size, fk.Header, fk.DataKey)
		if err != nil {
			return err
		}
		if to < 0 || to > ra.Size() {
			to = ra.Size()
		}
		if from > to {
			return fmt.Errorf("range %d-%d starts after its end (the plaintext is %d bytes)", from, to, ra.Size())
		}
		return writeOutput(e, *out, func(w io.Writer) error {
			_, err := io.Copy(w, io.NewSectionReader(ra, from, to-from))
			return err
		})
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

// parseRange parses start-end.
func parseRange(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "-")
	bad := withHint(fmt.Errorf("bad -range %q", s), "ranges look like 0-4096 (end exclusive), 1000- or -512")
	if !ok {
		return 0, 0, bad
	}
	from, to := int64(0), int64(-1)
	var err error
	if a != "" {
		if from, err = strconv.ParseInt(a, 10, 64); err != nil || from < 0 {
			return 0, 0, bad
		}
	}
	if b != "" {
		if to, err = strconv.ParseInt(b, 10, 64); err != nil || to < 0 {
			return 0, 0, bad
		}
	}
	return from, to, nil
}

// describeWriter says who wrote a file, as checked.
func describeWriter(fk *client.FileKey) string {
	c := fk.Contents
	switch {
	case !c.Signed:
		return fmt.Sprintf("unsigned version 1 file %s: its writer is not authenticated", c.Path)
	case c.Cert == nil:
		return fmt.Sprintf("%s, signed by its owner %s", c.Path, fk.Header.Owner())
	default:
		return fmt.Sprintf("%s, signed by writer %s, whom the owner %s lets write under %s", c.Path, c.Writer, fk.Header.Owner(), c.Cert.Prefix)
	}
}

// keyJSON is `kadre decrypt -key-only`: what an application needs to
// decrypt the body itself (SPEC.md §7.6).
type keyJSON struct {
	Format       int    `json:"format"`
	Path         string `json:"path"`
	Owner        string `json:"owner"`
	Writer       string `json:"writer,omitempty"`
	WriterPrefix string `json:"writer_prefix,omitempty"`
	Signed       bool   `json:"signed"`
	HeaderLen    int    `json:"header_len"`
	DataKey      string `json:"data_key"`
	BodyKey      string `json:"body_key"`
	ChunkSize    int    `json:"chunk_size"`
	GroupChunks  int    `json:"group_chunks,omitempty"`
}

func printKey(e *env, out string, fk *client.FileKey) error {
	bk, err := fk.Header.BodyKey(fk.DataKey)
	if err != nil {
		return err
	}
	k := keyJSON{Format: fk.Header.FormatVersion(), Path: fk.Contents.Path.String(), Owner: fk.Header.Owner().String(),
		Signed: fk.Contents.Signed, HeaderLen: fk.Header.Len(), DataKey: hex.EncodeToString(fk.DataKey),
		BodyKey: hex.EncodeToString(bk), ChunkSize: kfile.ChunkSize}
	if fk.Contents.Signed {
		k.Writer = fk.Contents.Writer.String()
		k.GroupChunks = kfile.GroupChunks
	}
	if fk.Contents.Cert != nil {
		k.WriterPrefix = fk.Contents.Cert.Prefix.String()
	}
	return writeOutput(e, out, func(w io.Writer) error { return printJSON(w, k) })
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

// cmdMigrate re-encrypts the owner's version 1 files (unsigned, path in
// clear) as version 2 files.
func cmdMigrate(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "migrate", "<in> [-o out]",
		"Re-encrypts a version 1 file of yours (unsigned, its path in clear) as a version 2 file: same path and content, signed by you, encrypted to each prefix's current key epoch. Works offline.")
	u.bind(fs, e)
	out := fs.String("o", "", "output file (default: <in>.v2)")
	if err := parseInterleaved(fs, args); err != nil {
		return errUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	in, _, name, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer in.Close()
	c, err := u.open(e)
	if err != nil {
		return err
	}
	defer c.Close()
	fk, err := c.DecryptKey(ctx, in, client.DecryptOptions{AllowUnsigned: true})
	if err != nil {
		return fileHint(err)
	}
	if !fk.ByOwner {
		return withHint(errors.New("only the file's owner can migrate it"), "ask the owner (%s) to run kadre migrate", fk.Header.Owner())
	}
	if fk.Header.FormatVersion() != 1 {
		return fmt.Errorf("%s is already a version %d file", name, fk.Header.FormatVersion())
	}
	r, err := kfile.NewReader(in, fk.Header, fk.DataKey)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = name + ".v2"
	}
	if err := writeOutput(e, *out, func(w io.Writer) error { return c.Encrypt(w, r, fk.Contents.Path) }); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "kadre: %s → %s (version 2, %s)\n", name, *out, fk.Contents.Path)
	return nil
}
