package fsx

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Batch writes many files durably behind one barrier, for commands that
// write hundreds of small files (kadre decrypt -r): each file goes to a
// temporary file in its directory, unsynced; Commit makes them all
// durable at once (one syncfs per file system on Linux, a sync of each
// file elsewhere), renames each into place and syncs each directory once.
// A crash before Commit leaves the old contents and temporary files
// (named .<name>.tmp…); after a file's rename it is whole and on disk.
// It is safe for concurrent use.
type Batch struct {
	mu    sync.Mutex
	files []batchFile
}

type batchFile struct {
	tmp, path string
}

// Add writes path's new content through fill; nothing shows under path
// until Commit. If fill fails, path is untouched.
func (b *Batch) Add(path string, mode os.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		err = fill(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	b.mu.Lock()
	b.files = append(b.files, batchFile{tmp: tmp, path: path})
	b.mu.Unlock()
	return nil
}

// Commit makes every added file durable and puts it in place. It returns
// each file's error by path (nil: whole and on disk under its name).
func (b *Batch) Commit() map[string]error {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	out := make(map[string]error, len(files))
	if len(files) == 0 {
		return out
	}
	tmps := make([]string, len(files))
	for i, f := range files {
		tmps[i] = f.tmp
	}
	if err := syncFiles(tmps); err != nil {
		for _, f := range files {
			os.Remove(f.tmp)
			out[f.path] = err
		}
		return out
	}
	dirs := map[string]error{}
	for _, f := range files {
		if err := os.Rename(f.tmp, f.path); err != nil {
			os.Remove(f.tmp)
			out[f.path] = err
			continue
		}
		out[f.path] = nil
		dirs[filepath.Dir(f.path)] = nil
	}
	for d := range dirs {
		dirs[d] = SyncDir(d)
	}
	for _, f := range files {
		if out[f.path] == nil {
			if err := dirs[filepath.Dir(f.path)]; err != nil {
				out[f.path] = err
			}
		}
	}
	return out
}

// Abort removes the files added and not committed.
func (b *Batch) Abort() {
	b.mu.Lock()
	files := b.files
	b.files = nil
	b.mu.Unlock()
	for _, f := range files {
		os.Remove(f.tmp)
	}
}

// syncEach syncs every file, one at a time.
func syncEach(paths []string) error {
	var errs []error
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, f.Sync(), f.Close())
	}
	return errors.Join(errs...)
}
