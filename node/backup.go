package node

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kadre/kadre/internal/seal"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// A node backup (SPEC.md §6.8) is everything a node needs to come back on
// another disk: its identity key, so it is the same peer that owners placed
// fragments on, and its store (grants, tombstones, sequence marks), sealed
// under a key derived from a passphrase:
//
//	header   = "kadre-backup" ‖ 0x01 ‖ t (u32) ‖ m KiB (u32) ‖ p (u8) ‖ salt (16)
//	k        = argon2id(passphrase, salt, t, m, p)
//	identity = seal(HKDF-SHA256(k, header, "kadre/backup/v1 identity"), identity key (32), ad = header)   (72 bytes)
//	store    = the store's export stream (SPEC.md §6.7) under HKDF-SHA256(k, header, "kadre/backup/v1 store")
const backupMagic = "kadre-backup"

const backupVersion = 1

// ErrBadBackup means a backup is not one, was made with another
// passphrase, or was modified.
var ErrBadBackup = errors.New("node: not a kadre backup, wrong passphrase, or modified")

// BackupStats counts what a backup or a restore carried.
type BackupStats = store.ExportStats

// Backup writes a backup of the stopped node in dataDir to w. The store is
// opened with key (nil: its key file), so Backup fails with store.ErrLocked
// while the node runs.
func Backup(dataDir string, key store.KeySource, passphrase []byte, w io.Writer) (BackupStats, error) {
	st, sealKey, err := openStore(dataDir, store.Options{Key: key})
	if err != nil {
		return BackupStats{}, err
	}
	defer st.Close()
	id, _, err := readIdentity(filepath.Join(dataDir, IdentityFile), sealKey)
	clear(sealKey[:])
	if err != nil {
		return BackupStats{}, err
	}
	salt, err := seal.NewSalt()
	if err != nil {
		return BackupStats{}, err
	}
	p := seal.DefaultParams()
	header := backupHeader(p, salt)
	idKey, storeKey, err := backupKeys(passphrase, p, salt, header)
	if err != nil {
		return BackupStats{}, err
	}
	sealedID, err := seal.Seal(idKey, id.Bytes(), header)
	if err != nil {
		return BackupStats{}, err
	}
	bw := bufio.NewWriter(w)
	bw.Write(header)
	bw.Write(sealedID)
	stats, err := st.Export(bw, storeKey, nil)
	if err != nil {
		return stats, err
	}
	return stats, bw.Flush()
}

// Restore recreates a node's data directory from a backup: the identity
// key (dataDir must hold none, or the same one) and the store, created
// with key (nil: a new key file) if missing, into which the backup is
// imported with the store's rules (a newer grant or tombstone already
// there wins). The node must be stopped.
func Restore(dataDir string, key store.KeySource, passphrase []byte, r io.Reader, now time.Time) (BackupStats, error) {
	br := bufio.NewReader(r)
	header := make([]byte, len(backupMagic)+1+4+4+1+seal.SaltSize)
	if _, err := io.ReadFull(br, header); err != nil || !bytes.HasPrefix(header, []byte(backupMagic)) {
		return BackupStats{}, ErrBadBackup
	}
	if header[len(backupMagic)] != backupVersion {
		return BackupStats{}, fmt.Errorf("%w: version %d", ErrBadBackup, header[len(backupMagic)])
	}
	rest := header[len(backupMagic)+1:]
	p := seal.Params{Time: binary.BigEndian.Uint32(rest), MemoryKiB: binary.BigEndian.Uint32(rest[4:]), Threads: rest[8]}
	if err := p.Check(); err != nil {
		return BackupStats{}, fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	idKey, storeKey, err := backupKeys(passphrase, p, rest[9:], header)
	if err != nil {
		return BackupStats{}, err
	}
	sealedID := make([]byte, rekey.SecretKeySize+seal.Overhead)
	if _, err := io.ReadFull(br, sealedID); err != nil {
		return BackupStats{}, ErrBadBackup
	}
	raw, err := seal.Open(idKey, sealedID, header)
	if err != nil {
		return BackupStats{}, ErrBadBackup
	}
	id, err := rekey.ParseSecretKey(raw)
	if err != nil {
		return BackupStats{}, ErrBadBackup
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return BackupStats{}, err
	}
	// The store first: the identity is sealed under its key.
	st, sealKey, err := openStore(dataDir, store.Options{Key: key})
	if err != nil {
		return BackupStats{}, err
	}
	defer st.Close()
	defer clear(sealKey[:])
	idPath := filepath.Join(dataDir, IdentityFile)
	switch held, _, err := readIdentity(idPath, sealKey); {
	case errors.Is(err, fs.ErrNotExist):
		if err := writeIdentity(idPath, id, sealKey); err != nil {
			return BackupStats{}, err
		}
	case err != nil:
		return BackupStats{}, err
	case !held.Equal(id):
		return BackupStats{}, fmt.Errorf("node: %s holds another node's identity; restore into an empty data directory", dataDir)
	}
	stats, err := st.Import(br, storeKey, now)
	if errors.Is(err, store.ErrBadExport) {
		return stats, fmt.Errorf("%w: %w", ErrBadBackup, err)
	}
	return stats, err
}

func backupHeader(p seal.Params, salt []byte) []byte {
	h := append([]byte(backupMagic), backupVersion)
	h = binary.BigEndian.AppendUint32(h, p.Time)
	h = binary.BigEndian.AppendUint32(h, p.MemoryKiB)
	h = append(h, p.Threads)
	return append(h, salt...)
}

// backupKeys derives the identity sealing key and the store export key.
func backupKeys(passphrase []byte, p seal.Params, salt, header []byte) (idKey, storeKey *[32]byte, err error) {
	k, err := p.Key(passphrase, salt)
	if err != nil {
		return nil, nil, err
	}
	derive := func(info string) (*[32]byte, error) {
		b, err := hkdf.Key(sha256.New, k[:], header, info, 32)
		if err != nil {
			return nil, err
		}
		return (*[32]byte)(b), nil
	}
	if idKey, err = derive("kadre/backup/v1 identity"); err != nil {
		return nil, nil, err
	}
	storeKey, err = derive("kadre/backup/v1 store")
	return idKey, storeKey, err
}
