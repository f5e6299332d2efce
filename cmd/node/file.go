package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/client"
	"github.com/kadre/kadre/dht"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

func cmdEncrypt(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "encrypt", "-path </path/of/file> [-writer <certificate>] [in] [-o out]  |  -path </prefix> [-r] [-o dir] in...",
		"Encrypts a file (or standard input) under a path of the owner's hierarchy, signed by you. Whoever holds a grant on a prefix of the path can decrypt it. The owner encrypts with her own keys; anyone else needs a writer certificate from her (kadre writer add). Works offline.\n\n"+
			"With several files, or directories and -r, -path is a prefix: a file named on the command line goes to <prefix>/<its name>, a file found in a directory to <prefix>/<its path inside the directory>; each is written to <file>.kadre (or under -o <dir>), one failure does not stop the others, and a summary of every file ends the run.")
	u.bindHome(fs, e)
	u.bindAgent(fs)
	fs.BoolVar(&u.json, "json", false, "print the per-file summary as JSON (a failure too)")
	path := fs.String("path", "", "the file's path in the owner's hierarchy, e.g. /docs/report.txt (with several files: their prefix)")
	out := fs.String("o", "", "output file (default: <in>.kadre, or standard output for standard input); with several files an output directory")
	writer := fs.String("writer", "", "a writer certificate from the owner (kadrewriter1…, or @file holding one): write as that writer")
	recursive := fs.Bool("r", false, "encrypt the files of the directories given, recursively (files ending in .kadre are left out)")
	force := fs.Bool("force", false, "with several files: replace existing outputs")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-path": *path == ""}); err != nil {
		return err
	}
	p, err := policy.NormalizePath(*path)
	if err != nil {
		return u.fail(err, nil)
	}
	var cert string
	if *writer != "" {
		c, err := readWriterCert(*writer)
		if err != nil {
			return u.fail(err, nil)
		}
		cert = c.String()
	}
	if many, err := manyFiles(fs.Args(), *recursive); err != nil {
		return u.fail(err, nil)
	} else if many {
		return encryptMany(ctx, e, &u, fs.Args(), p, cert, *out, *recursive, *force)
	}
	in, _, inName, err := openInput(e, fs.Arg(0))
	if err != nil {
		return u.fail(err, nil)
	}
	defer in.Close()
	if *out == "" && inName != "-" {
		*out = inName + ".kadre"
	}
	if *out == "" || *out == "-" {
		if u.json {
			return withHint(badUsage("-json prints a report on standard output, where the kadre file would go"), "pass -o <file>")
		}
		if isTerminal(e.stdout) {
			return withHint(errors.New("refusing to write a kadre file (binary) to a terminal"), "redirect standard output or pass -o <file>")
		}
	}
	b, err := u.backend(ctx, e)
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	err = writeOutput(e, *out, func(w io.Writer) error {
		return b.Encrypt(ctx, w, newProgress(e, in, -1, "encrypting"), agent.EncryptRequest{Path: p.String(), Writer: cert})
	})
	if err != nil {
		return u.fail(err, nil)
	}
	if u.json {
		return printJSON(e.stdout, fileResult{Input: inName, Output: *out, Path: p.String(), OK: true})
	}
	return nil
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
	cert, err := policy.ParseWriterCertString(strings.TrimSpace(v))
	if err != nil {
		return nil, explain.WithCode("BAD_CERTIFICATE", err, "a writer certificate is the kadrewriter1… string `kadre writer add` printed for you")
	}
	return cert, nil
}

func cmdDecrypt(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "decrypt", "[in] [-o out] [-range start-end] [-key-only]  |  [-r] [-o dir] in...",
		"Decrypts a kadre file after checking who wrote it. Its owner decrypts offline; a recipient asks the nodes holding the grant's fragments and needs m of them to answer.\n\n"+
			"With several files, or directories and -r, every file is decrypted next to itself without its .kadre suffix (or under -o <dir>); the keys of the files under one grant are asked of its holders together, one failure does not stop the others, and a summary of every file ends the run.")
	u.bind(fs, e)
	out := fs.String("o", "", "output file (default: standard output); with several files an output directory")
	verbose := fs.Bool("v", false, "report every node's answer")
	keyOnly := fs.Bool("key-only", false, "print the file's keys and layout as JSON instead of the plaintext, for applications that decrypt the body themselves")
	byteRange := fs.String("range", "", "decrypt only bytes start-end of the plaintext (end exclusive, either may be omitted: 100-, -4096); needs a file, not standard input")
	allowUnsigned := fs.Bool("allow-unsigned", false, "accept version 1 files, which nobody signed")
	recursive := fs.Bool("r", false, "decrypt the .kadre files of the directories given, recursively")
	force := fs.Bool("force", false, "with several files: replace existing outputs")
	if err := fs.parse(args); err != nil {
		return err
	}
	opt := agent.DecryptOptions{AllowUnsigned: *allowUnsigned}
	if many, err := manyFiles(fs.Args(), *recursive); err != nil {
		return u.fail(err, nil)
	} else if many {
		if *keyOnly || *byteRange != "" {
			return withHint(badUsage("-key-only and -range take one file"), "decrypt the files one at a time")
		}
		return decryptMany(ctx, e, &u, fs.Args(), opt, *out, *recursive, *force, *verbose)
	}
	in, size, name, err := openInput(e, fs.Arg(0))
	if err != nil {
		return u.fail(err, nil)
	}
	defer in.Close()
	var from, to int64 = 0, -1
	if *byteRange != "" {
		if name == "-" {
			return u.fail(withHint(errors.New("-range needs a file to read from"), "pass the file's name instead of standard input"), nil)
		}
		if from, to, err = parseRange(*byteRange); err != nil {
			return u.fail(err, nil)
		}
	}
	if u.json && !*keyOnly && (*out == "" || *out == "-") {
		return withHint(badUsage("-json prints a report on standard output, where the plaintext would go"), "pass -o <file>, or -key-only")
	}
	h, err := kfile.ReadHeader(in)
	if err != nil {
		return u.fail(err, map[string]any{"input": name})
	}
	b, err := u.backend(ctx, e)
	if err != nil {
		return u.fail(err, nil)
	}
	defer b.Close()
	res, err := b.DecryptKeys(ctx, [][]byte{h.Bytes()}, opt)
	if err == nil && len(res) != 1 {
		err = fmt.Errorf("%d answers for one file", len(res))
	}
	if err != nil {
		return u.fail(err, nil)
	}
	if p := res[0].Error; p != nil {
		if !u.json && len(p.Nodes) > 0 {
			report(e, p.Nodes)
		}
		return u.fail(agent.ProblemError(p), map[string]any{"input": name})
	}
	k := res[0].Key
	if *verbose && !u.json {
		report(e, k.Nodes)
		if !k.ByOwner {
			fmt.Fprintf(e.stderr, "kadre: using the grant on %s (%d-of-%d, key epoch %d)\n", k.Prefix, k.M, k.N, k.Epoch)
		}
	}
	if !u.json {
		fmt.Fprintf(e.stderr, "kadre: %s\n", describeWriter(k))
	}
	if *keyOnly {
		return writeOutput(e, *out, func(w io.Writer) error { return printJSON(w, keyJSON(*k)) })
	}
	key, err := hex.DecodeString(k.DataKey)
	if err != nil {
		return err
	}
	if *byteRange != "" {
		f, ok := in.(*os.File)
		if !ok {
			return errors.New("-range needs a file")
		}
		ra, err := kfile.NewReaderAt(f, size, h, key)
		if err != nil {
			return u.fail(err, nil)
		}
		if to < 0 || to > ra.Size() {
			to = ra.Size()
		}
		if from > to {
			return u.fail(fmt.Errorf("range %d-%d starts after its end (the plaintext is %d bytes)", from, to, ra.Size()), nil)
		}
		err = writeOutput(e, *out, func(w io.Writer) error {
			_, err := io.Copy(w, io.NewSectionReader(ra, from, to-from))
			return err
		})
		if err != nil {
			return u.fail(err, nil)
		}
		return u.report(fileResult{Input: name, Output: *out, Path: k.Path, OK: true, Key: k})
	}
	if size > 0 {
		size -= int64(h.Len())
	}
	r, err := kfile.NewReader(in, h, key)
	if err != nil {
		return u.fail(err, nil)
	}
	err = writeOutput(e, *out, func(w io.Writer) error {
		_, err := io.Copy(w, newProgress(e, r, size, "decrypting"))
		return err
	})
	if err != nil {
		return u.fail(err, map[string]any{"input": name})
	}
	return u.report(fileResult{Input: name, Output: *out, Path: k.Path, OK: true, Key: k})
}

// report prints a one-file result with -json.
func (u *userFlags) report(r fileResult) error {
	if !u.json {
		return nil
	}
	return printJSON(u.e.stdout, r)
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

// keyJSON is `kadre decrypt -key-only`'s output (SPEC.md §7.6): the file's
// keys and layout, and how the key was obtained (SPEC.md §9.5).
type keyJSON = agent.KeyInfo

// describeWriter says who wrote a file, as checked.
func describeWriter(k *agent.KeyInfo) string {
	switch {
	case !k.Signed:
		return fmt.Sprintf("unsigned version 1 file %s: its writer is not authenticated", k.Path)
	case k.WriterPrefix == "":
		return fmt.Sprintf("%s, signed by its owner %s", k.Path, k.Owner)
	default:
		return fmt.Sprintf("%s, signed by writer %s, whom the owner %s lets write under %s", k.Path, k.Writer, k.Owner, k.WriterPrefix)
	}
}

// report prints each node's answer.
func report(e *env, nodes map[string]string) {
	for _, l := range nodeLines(nodes) {
		fmt.Fprintln(e.stderr, "kadre: "+l)
	}
}

func nodeLines(nodes map[string]string) []string {
	var lines []string
	for p, o := range nodes {
		lines = append(lines, fmt.Sprintf("node %s: %s", p, dht.Outcome(o).Words()))
	}
	sortStrings(lines)
	return lines
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
	} else if err == nil && st.IsDir() {
		f.Close()
		return nil, 0, "", withHint(fmt.Errorf("%s is a directory", name), "pass -r to take the files in it")
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

// cmdMigrate re-encrypts the owner's version 1 files (unsigned, path in
// clear) as version 2 files.
func cmdMigrate(ctx context.Context, e *env, args []string) error {
	var u userFlags
	fs := newFlagSet(e, "migrate", "<in> [-o out]",
		"Re-encrypts a version 1 file of yours (unsigned, its path in clear) as a version 2 file: same path and content, signed by you, encrypted to each prefix's current key epoch. Works offline.")
	u.bindHome(fs, e)
	out := fs.String("o", "", "output file (default: <in>.v2)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return withHint(badUsage("migrate takes one file"), "usage: %s", fs.synopsis())
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
		return explain.Decrypt(err, fk)
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
