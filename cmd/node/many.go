package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kadre/kadre/agent"
	"github.com/kadre/kadre/internal/explain"
	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

// Many files at once (kadre encrypt/decrypt with several files or -r):
// one progress line for the whole run, every file on its own (a failure
// does not stop the others), files written behind one durability barrier
// per chunk (fsx.Batch), and a summary of every file at the end.

// chunkFiles is how many files are handled together: their keys asked in
// one batch, their outputs committed together.
const chunkFiles = 256

// fileResult is one file of a run, as the summary and -json print it.
type fileResult struct {
	Input   string            `json:"input"`
	Output  string            `json:"output,omitempty"`
	Path    string            `json:"path,omitempty"`
	OK      bool              `json:"ok"`
	Bytes   int64             `json:"bytes,omitempty"`
	Owner   string            `json:"owner,omitempty"`
	Writer  string            `json:"writer,omitempty"`
	ByOwner bool              `json:"by_owner,omitempty"`
	Prefix  string            `json:"prefix,omitempty"`
	Nodes   map[string]string `json:"nodes,omitempty"`
	Error   *explain.Problem  `json:"error,omitempty"`
	// Key is the file's key, kept for the run (never printed).
	Key *agent.KeyInfo `json:"-"`
}

func (r *fileResult) setKey(k *agent.KeyInfo) {
	r.Key, r.Path, r.Owner, r.Writer, r.ByOwner, r.Prefix, r.Nodes = k, k.Path, k.Owner, k.Writer, k.ByOwner, k.Prefix, k.Nodes
}

func (r *fileResult) fail(err error) {
	p := explain.Of(err)
	r.OK, r.Error = false, &p
	if p.Nodes != nil {
		r.Nodes = p.Nodes
	}
}

// manyFiles reports whether the arguments ask for many-file mode: several
// inputs, -r, or a directory.
func manyFiles(args []string, recursive bool) (bool, error) {
	if recursive {
		for _, a := range args {
			if a == "-" {
				return false, badUsage("-r takes files and directories, not standard input")
			}
		}
		if len(args) == 0 {
			return false, withHint(badUsage("-r needs directories or files"), "kadre decrypt -r <dir>")
		}
		return true, nil
	}
	if len(args) > 1 {
		return true, nil
	}
	if len(args) == 1 && args[0] != "-" {
		if st, err := os.Stat(args[0]); err == nil && st.IsDir() {
			return false, withHint(badUsage("%s is a directory", args[0]), "pass -r to take the files in it")
		}
	}
	return false, nil
}

// job is one input file of a run: its name and its path relative to the
// argument it came from (its base name for a file argument).
type job struct {
	input, rel string
	err        error
}

// listInputs expands the arguments: files as they are, directories (with
// -r) into their regular files that keep accepts, in lexical order.
func listInputs(args []string, recursive bool, keep func(string) bool) []job {
	var jobs []job
	for _, a := range args {
		st, err := os.Stat(a)
		switch {
		case err != nil:
			jobs = append(jobs, job{input: a, err: err})
		case !st.IsDir():
			jobs = append(jobs, job{input: a, rel: filepath.Base(a)})
		case !recursive:
			jobs = append(jobs, job{input: a, err: withHint(fmt.Errorf("%s is a directory", a), "pass -r to take the files in it")})
		default:
			filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					jobs = append(jobs, job{input: p, err: err})
					return nil
				}
				if !d.Type().IsRegular() || !keep(d.Name()) || strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp") {
					return nil
				}
				rel, _ := filepath.Rel(a, p)
				jobs = append(jobs, job{input: p, rel: rel})
				return nil
			})
		}
	}
	return jobs
}

// outputFor places a job's output: under dir mirroring its relative path,
// or next to the input.
func outputFor(j job, dir, name string) string {
	if dir != "" {
		return filepath.Join(dir, filepath.Dir(j.rel), name)
	}
	return filepath.Join(filepath.Dir(j.input), name)
}

// batchRun is the state of a many-file run.
type batchRun struct {
	e       *env
	u       *userFlags
	verb    string // "encrypting", "decrypting"
	results []fileResult
	mu      sync.Mutex
	done    int
	failed  int
	last    time.Time
	tty     bool
}

func newRun(e *env, u *userFlags, verb string, n int) *batchRun {
	return &batchRun{e: e, u: u, verb: verb, results: make([]fileResult, n), tty: isTerminal(e.stderr)}
}

// finished counts a file as done and redraws the progress line.
func (r *batchRun) finished(failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	if failed {
		r.failed++
	}
	if r.tty && (time.Since(r.last) > 200*time.Millisecond || r.done == len(r.results)) {
		r.last = time.Now()
		fmt.Fprintf(r.e.stderr, "\r%s: %d of %d files, %d failed", r.verb, r.done, len(r.results), r.failed)
		if r.done == len(r.results) {
			fmt.Fprintln(r.e.stderr)
		}
	}
}

// summary prints every file's outcome, then the totals, and each distinct
// hint once; it returns errReported if a file failed.
func (r *batchRun) summary(what string) error {
	ok := 0
	for _, res := range r.results {
		if res.OK {
			ok++
		}
	}
	failed := len(r.results) - ok
	if r.u.json {
		printJSON(r.e.stdout, map[string]any{"files": r.results, "ok": ok, "failed": failed})
	} else {
		hints := map[string]bool{}
		var order []string
		for _, res := range r.results {
			if res.OK {
				fmt.Fprintf(r.e.stdout, "ok      %s → %s\n", res.Input, res.Output)
				continue
			}
			fmt.Fprintf(r.e.stdout, "failed  %s: %s\n", res.Input, res.Error.Message)
			if h := res.Error.Hint; h != "" && !hints[h] {
				hints[h] = true
				order = append(order, h)
			}
		}
		fmt.Fprintf(r.e.stdout, "%s %d of %s; %d failed\n", what, ok, plural(len(r.results), "file", "files"), failed)
		for _, h := range order {
			fmt.Fprintf(r.e.stderr, "kadre: hint: %s\n", h)
		}
	}
	if failed > 0 {
		return errReported
	}
	return nil
}

// backends is the backend of a run, replaced when a running agent stops
// answering in the middle of it: by the agent that took its place, or by
// a client of this process's own.
type backends struct {
	u        *userFlags
	e        *env
	mu       sync.Mutex
	b        agent.Backend
	switches int
}

func (s *backends) get(ctx context.Context) (agent.Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		b, err := s.u.backend(ctx, s.e)
		if err != nil {
			return nil, err
		}
		s.b = b
	}
	return s.b, nil
}

// replace drops b after it failed with err; it reports whether to try
// again (the agent went away and the run may go on without it).
func (s *backends) replace(b agent.Backend, err error) bool {
	if !errors.Is(err, agent.ErrGone) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b != b {
		return true // another worker replaced it already
	}
	if s.switches >= 3 {
		return false
	}
	s.switches++
	fmt.Fprintln(s.e.stderr, "kadre: the agent stopped answering; going on with the agent that replaced it, or without one")
	b.Close()
	s.b = nil
	return true
}

func (s *backends) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b != nil {
		s.b.Close()
	}
}

// workers runs fn(0..n-1) on k goroutines.
func workers(n, k int, fn func(int)) {
	var g errgroup.Group
	g.SetLimit(max(k, 1))
	for i := range n {
		g.Go(func() error { fn(i); return nil })
	}
	g.Wait()
}

// commit commits a chunk's outputs and records each file's outcome.
func (r *batchRun) commit(batch *fsx.Batch, idx []int) {
	errs := batch.Commit()
	for _, i := range idx {
		res := &r.results[i]
		if res.Error != nil {
			continue
		}
		if err, ok := errs[res.Output]; !ok || err != nil {
			if err == nil {
				err = errors.New("the output was not written")
			}
			res.fail(err)
		} else {
			res.OK = true
		}
		r.finished(!res.OK)
	}
}

// claimOutputs refuses outputs that exist (without -force) or that two
// inputs would share, and counts every file failed so far as finished.
func (r *batchRun) claimOutputs(force bool) {
	seen := map[string]string{}
	for i := range r.results {
		res := &r.results[i]
		if res.Error != nil {
			continue
		}
		if other, dup := seen[res.Output]; dup {
			res.fail(fmt.Errorf("%s is also the output of %s", res.Output, other))
			continue
		}
		seen[res.Output] = res.Input
		if _, err := os.Lstat(res.Output); err == nil && !force {
			res.fail(withHint(fmt.Errorf("%s exists", res.Output), "pass -force to replace existing outputs"))
		}
	}
	for i := range r.results {
		if r.results[i].Error != nil {
			r.finished(true)
		}
	}
}

func encryptMany(ctx context.Context, e *env, u *userFlags, args []string, prefix policy.Path, cert, outDir string, recursive, force bool) error {
	jobs := listInputs(args, recursive, func(name string) bool { return !strings.HasSuffix(name, ".kadre") })
	r := newRun(e, u, "encrypting", len(jobs))
	for i, j := range jobs {
		res := &r.results[i]
		res.Input = j.input
		if j.err != nil {
			res.fail(j.err)
			continue
		}
		p, err := policy.NormalizePath(prefix.String() + "/" + filepath.ToSlash(j.rel))
		if err != nil {
			res.fail(err)
			continue
		}
		res.Path, res.Output = p.String(), outputFor(j, outDir, filepath.Base(j.input)+".kadre")
	}
	r.claimOutputs(force)
	bs := &backends{u: u, e: e}
	defer bs.close()
	for start := 0; start < len(jobs); start += chunkFiles {
		var idx []int
		for i := start; i < min(start+chunkFiles, len(jobs)); i++ {
			if r.results[i].Error == nil {
				idx = append(idx, i)
			}
		}
		var batch fsx.Batch
		workers(len(idx), 4, func(k int) {
			res := &r.results[idx[k]]
			if err := os.MkdirAll(filepath.Dir(res.Output), 0o700); err != nil {
				res.fail(err)
				r.finished(true)
				return
			}
			for {
				b, err := bs.get(ctx)
				if err == nil {
					err = batch.Add(res.Output, 0o600, func(w io.Writer) error {
						in, err := os.Open(res.Input)
						if err != nil {
							return err
						}
						defer in.Close()
						return b.Encrypt(ctx, w, in, agent.EncryptRequest{Path: res.Path, Writer: cert})
					})
				}
				if err != nil && b != nil && bs.replace(b, err) {
					continue
				}
				if err != nil {
					res.fail(err)
					r.finished(true)
				}
				return
			}
		})
		r.commit(&batch, idx)
	}
	return r.summary("encrypted")
}

func decryptMany(ctx context.Context, e *env, u *userFlags, args []string, opt agent.DecryptOptions, outDir string, recursive, force, verbose bool) error {
	jobs := listInputs(args, recursive, func(name string) bool { return strings.HasSuffix(name, ".kadre") })
	r := newRun(e, u, "decrypting", len(jobs))
	for i, j := range jobs {
		res := &r.results[i]
		res.Input = j.input
		if j.err != nil {
			res.fail(j.err)
			continue
		}
		name, ok := strings.CutSuffix(filepath.Base(j.input), ".kadre")
		if !ok || name == "" {
			name = filepath.Base(j.input) + ".out"
		}
		res.Output = outputFor(j, outDir, name)
	}
	r.claimOutputs(force)
	bs := &backends{u: u, e: e}
	defer bs.close()
	for start := 0; start < len(jobs); start += chunkFiles {
		var idx []int
		var headers []*kfile.Header
		for i := start; i < min(start+chunkFiles, len(jobs)); i++ {
			res := &r.results[i]
			if res.Error != nil {
				continue
			}
			h, err := readHeader(res.Input)
			if err != nil {
				res.fail(err)
				r.finished(true)
				continue
			}
			idx, headers = append(idx, i), append(headers, h)
		}
		if len(idx) == 0 {
			continue
		}
		keys, err := decryptKeys(ctx, bs, headers, opt)
		for k, i := range idx {
			res := &r.results[i]
			switch {
			case k >= len(keys):
				res.fail(err)
			case keys[k].Error != nil:
				res.fail(agent.ProblemError(keys[k].Error))
				res.Nodes = keys[k].Error.Nodes
			default:
				res.setKey(keys[k].Key)
			}
			if res.Error != nil {
				r.finished(true)
			}
		}
		var batch fsx.Batch
		var ready []int
		for _, i := range idx {
			if r.results[i].Error == nil {
				ready = append(ready, i)
			} else if verbose && !u.json {
				report(e, r.results[i].Nodes)
			}
		}
		workers(len(ready), 4, func(k int) {
			res := &r.results[ready[k]]
			h := headers[indexOf(idx, ready[k])]
			if err := decryptBody(&batch, res, h); err != nil {
				res.fail(err)
				r.finished(true)
			}
		})
		r.commit(&batch, ready)
	}
	return r.summary("decrypted")
}

func indexOf(s []int, v int) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// readHeader reads a file's header.
func readHeader(name string) (*kfile.Header, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return kfile.ReadHeader(f)
}

// decryptKeys asks the keys of headers, going on without the agent if it
// stops answering in the middle.
func decryptKeys(ctx context.Context, bs *backends, headers []*kfile.Header, opt agent.DecryptOptions) ([]agent.KeyResult, error) {
	raw := make([][]byte, len(headers))
	for i, h := range headers {
		raw[i] = h.Bytes()
	}
	var out []agent.KeyResult
	for {
		b, err := bs.get(ctx)
		if err != nil {
			return out, err
		}
		more, err := b.DecryptKeys(ctx, raw[len(out):], opt)
		out = append(out, more...)
		if err == nil || len(out) == len(raw) || !bs.replace(b, err) {
			return out, err
		}
	}
}

// decryptBody decrypts a file's body into the batch, at its output.
func decryptBody(batch *fsx.Batch, res *fileResult, h *kfile.Header) error {
	key, err := hex.DecodeString(res.Key.DataKey)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(res.Output), 0o700); err != nil {
		return err
	}
	return batch.Add(res.Output, 0o600, func(w io.Writer) error {
		f, err := os.Open(res.Input)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Seek(int64(h.Len()), io.SeekStart); err != nil {
			return err
		}
		rd, err := kfile.NewReader(f, h, key)
		if err != nil {
			return err
		}
		n, err := io.Copy(w, rd)
		res.Bytes = n
		return err
	})
}

func sortStrings(s []string) { sort.Strings(s) }
