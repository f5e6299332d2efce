// Package fsx writes files durably: when a write returns nil, the new
// content is on disk under its name (file and directory fsynced), and a crash
// at any moment leaves either the old content or the new one, never a mix or
// a partial file. Every file kadre keeps outside LMDB goes through it
// (identity and key files, the owner's grants ledger, node.json, decrypted
// and encrypted outputs).
package fsx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrLocked means another process holds a lock (Lock without wait).
var ErrLocked = errors.New("fsx: locked by another process")

// WriteFile replaces path with b, mode mode, atomically and durably.
func WriteFile(path string, b []byte, mode os.FileMode) error {
	return Replace(path, mode, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Replace writes path through fill: fill writes the content to a temporary
// file in the same directory, which is synced and renamed over path only if
// fill succeeded, then the directory is synced. If fill fails, path is
// untouched and the temporary file removed.
func Replace(path string, mode os.FileMode, fill func(io.Writer) error) error {
	return write(path, mode, fill, os.Rename)
}

// CreateFile creates path with content b, mode mode, atomically and
// durably; it fails with an error matching fs.ErrExist if path exists, and
// then leaves it untouched (a link, unlike a rename, never replaces).
func CreateFile(path string, b []byte, mode os.FileMode) error {
	return write(path, mode, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}, os.Link)
}

func write(path string, mode os.FileMode, fill func(io.Writer) error, place func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := place(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making the entries created or renamed in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("failed to sync directory: %w", err)
	}
	return nil
}
