package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/node"
	"github.com/kadre/kadre/store"
)

// backupFlags are the flags backup and restore share.
type backupFlags struct {
	dataDir    string
	storageKey string
}

func (b *backupFlags) bind(fs *flagSet, e *env) {
	fs.StringVar(&b.dataDir, "data-dir", firstNonEmpty(e.getenv("KADRE_DATA_DIR"), node.DefaultConfig().DataDir), "the node's data directory (env KADRE_DATA_DIR)")
	fs.StringVar(&b.storageKey, "storage-key", firstNonEmpty(e.getenv("KADRE_STORAGE_KEY_SOURCE"), "file"), "storage key source of the data directory: file, passphrase or env (as for kadre run)")
}

func cmdBackup(ctx context.Context, e *env, args []string) error {
	var b backupFlags
	fs := newFlagSet(e, "backup", "[-data-dir dir] -o file",
		"Writes a backup of a stopped node: its identity key and its fragments, tombstones and sequence marks, sealed under a passphrase (asked on the terminal, or KADRE_BACKUP_PASSPHRASE).")
	b.bind(fs, e)
	out := fs.String("o", "", "the backup file to write")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-o": *out == ""}); err != nil {
		return err
	}
	key, err := storageKeySource(b.storageKey, e.getenv)
	if err != nil {
		return err
	}
	pass, err := backupPassphrase(e, true)
	if err != nil {
		return err
	}
	var stats node.BackupStats
	err = fsx.Replace(*out, 0o600, func(w io.Writer) error {
		var err error
		stats, err = node.Backup(b.dataDir, key, pass, w)
		return err
	})
	if err != nil {
		return backupHint(err, b.dataDir)
	}
	fmt.Fprintf(e.stdout, "backed up %s to %s: %s, %s, %s\n", b.dataDir, *out,
		plural(int(stats.Grants), "grant", "grants"), plural(int(stats.Tombstones), "tombstone", "tombstones"), plural(int(stats.Seqs), "sequence mark", "sequence marks"))
	return nil
}

func cmdRestore(ctx context.Context, e *env, args []string) error {
	var b backupFlags
	fs := newFlagSet(e, "restore", "[-data-dir dir] -i file",
		"Restores a node from a backup into a data directory that holds no other node: the same identity, its fragments, tombstones and sequence marks (a newer record already there wins).")
	b.bind(fs, e)
	in := fs.String("i", "", "the backup file to read")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if err := missing(fs, map[string]bool{"-i": *in == ""}); err != nil {
		return err
	}
	key, err := storageKeySource(b.storageKey, e.getenv)
	if err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	pass, err := backupPassphrase(e, false)
	if err != nil {
		return err
	}
	stats, err := node.Restore(b.dataDir, key, pass, f, time.Now())
	if err != nil {
		return backupHint(err, b.dataDir)
	}
	fmt.Fprintf(e.stdout, "restored %s from %s: %s, %s, %s applied; %d skipped (expired, or older than what the directory had)\n", b.dataDir, *in,
		plural(int(stats.Grants), "grant", "grants"), plural(int(stats.Tombstones), "tombstone", "tombstones"), plural(int(stats.Seqs), "sequence mark", "sequence marks"), stats.Skipped)
	return nil
}

func backupPassphrase(e *env, confirm bool) ([]byte, error) {
	if p := e.getenv("KADRE_BACKUP_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	p, err := promptPassphrase(e, "backup passphrase: ")
	if errors.Is(err, errNoTerminal) {
		return nil, withHint(errors.New("a backup passphrase is needed and there is no terminal to ask it on"), "set KADRE_BACKUP_PASSPHRASE")
	}
	if err != nil {
		return nil, err
	}
	if confirm && len(p) < 8 {
		return nil, withHint(errors.New("backup passphrase shorter than 8 characters"), "choose a longer passphrase")
	}
	return p, nil
}

func backupHint(err error, dataDir string) error {
	switch {
	case errors.Is(err, store.ErrLocked):
		return withHint(err, "a node is running on %s: stop it first (backup and restore need the data directory to themselves)", dataDir)
	case errors.Is(err, node.ErrBadBackup):
		return withHint(err, "check the file and the passphrase given to `kadre backup`")
	case errors.Is(err, store.ErrWrongKey):
		return withHint(err, "pass the -storage-key source the data directory was created with")
	case errors.Is(err, os.ErrNotExist):
		return withHint(err, "is %s a node's data directory?", dataDir)
	}
	return err
}
