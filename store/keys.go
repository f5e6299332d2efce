package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/internal/seal"
)

// KeySize is the size of the storage key.
const KeySize = 32

// Files the store keeps in its data directory besides LMDB's data.mdb and
// lock.mdb.
const (
	// KeyFileName is the default key file, created 0600 on first open.
	KeyFileName = "storage.key"
	// SaltFileName holds the argon2id salt and parameters of a passphrase.
	SaltFileName = "storage.salt"
	// LockFileName is flocked for as long as the store is open.
	LockFileName = "store.lock"
)

// KeySource provides the 32-byte storage key that seals every value.
//
// StorageKey is called once by Open, after the data directory is locked.
// create is true when the directory holds no store yet: a source may then
// create what it needs (a key file, a salt), and must not otherwise write
// anything, so that a wrong key is reported before anything is touched.
// Open checks the returned key against a sealed verifier and fails with
// ErrWrongKey if it does not match.
//
// Three sources are provided: KeyFile, Passphrase and RawKey. Another
// implementation (a hardware token, say) only has to follow the contract.
type KeySource interface {
	StorageKey(dir string, create bool) (*[KeySize]byte, error)
}

// KeyFile returns the default key source: a random key kept in a file,
// generated with mode 0600 when the store is created. path "" means
// KeyFileName in the data directory. A key file next to the data protects
// only against someone who gets the data without the file (a copied
// data.mdb, a backup); keep it elsewhere, or use Passphrase, for more.
func KeyFile(path string) KeySource { return keyFile{path: path} }

type keyFile struct{ path string }

func (k keyFile) StorageKey(dir string, create bool) (*[KeySize]byte, error) {
	path := k.path
	if path == "" {
		path = filepath.Join(dir, KeyFileName)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return createKeyFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dir, SaltFileName)); serr == nil {
			return nil, fmt.Errorf("failed to read key file %s: this store was created with a passphrase (%s is present): %w", path, SaltFileName, err)
		}
		return nil, fmt.Errorf("failed to read key file %s (the store exists; restore its key file): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("failed to use key file %s: mode %v is readable by others (chmod 600 it)", path, fi.Mode().Perm())
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("failed to read key file %s: %w: want %d bytes, have %d", path, ErrWrongKey, KeySize, len(b))
	}
	var key [KeySize]byte
	copy(key[:], b)
	return &key, nil
}

func createKeyFile(path string) (*[KeySize]byte, error) {
	var key [KeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("failed to generate storage key: %w", err)
	}
	if err := fsx.CreateFile(path, key[:], 0o600); err != nil {
		return nil, fmt.Errorf("failed to create key file: %w", err)
	}
	return &key, nil
}

// RawKey uses a key given by the caller, typically decoded by the daemon
// from an environment variable. It must be exactly KeySize bytes.
func RawKey(key []byte) KeySource { return rawKey{key: bytes.Clone(key)} }

type rawKey struct{ key []byte }

func (r rawKey) StorageKey(string, bool) (*[KeySize]byte, error) {
	if len(r.key) != KeySize {
		return nil, fmt.Errorf("failed to use raw storage key: %w: want %d bytes, have %d", ErrInvalid, KeySize, len(r.key))
	}
	var key [KeySize]byte
	copy(key[:], r.key)
	return &key, nil
}

// Passphrase derives the key from a passphrase with argon2id and the
// default parameters. A random 16-byte salt and the parameters are written
// to SaltFileName when the store is created. The passphrase should be long
// and generated: the derivation slows guessing, it does not prevent it.
func Passphrase(passphrase []byte) KeySource {
	return PassphraseWithParams(passphrase, seal.DefaultParams())
}

// PassphraseWithParams is Passphrase with explicit parameters, used only
// when a store is created; an existing store uses the ones in its salt file.
func PassphraseWithParams(passphrase []byte, p seal.Params) KeySource {
	return passphraseKey{pass: bytes.Clone(passphrase), params: p}
}

type passphraseKey struct {
	pass   []byte
	params seal.Params
}

// Salt file: "kadre-argon2id-v1" || time u32 || memory u32 || threads u8 ||
// salt[16].
const saltMagic = "kadre-argon2id-v1"

const saltFileLen = len(saltMagic) + 4 + 4 + 1 + seal.SaltSize

func (p passphraseKey) StorageKey(dir string, create bool) (*[KeySize]byte, error) {
	if len(p.pass) == 0 {
		return nil, fmt.Errorf("failed to derive storage key: %w: empty passphrase", ErrInvalid)
	}
	path := filepath.Join(dir, SaltFileName)
	b, err := os.ReadFile(path)
	var params seal.Params
	var salt []byte
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		params = p.params
		if err := params.Check(); err != nil {
			return nil, fmt.Errorf("failed to derive storage key: %w: %w", ErrInvalid, err)
		}
		if salt, err = seal.NewSalt(); err != nil {
			return nil, err
		}
		b := []byte(saltMagic)
		b = binary.BigEndian.AppendUint32(b, params.Time)
		b = binary.BigEndian.AppendUint32(b, params.MemoryKiB)
		b = append(b, params.Threads)
		b = append(b, salt...)
		if err := fsx.CreateFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("failed to write salt file: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("failed to read salt file %s: %w", path, err)
	default:
		if len(b) != saltFileLen || string(b[:len(saltMagic)]) != saltMagic {
			return nil, fmt.Errorf("failed to read salt file %s: %w: malformed", path, ErrWrongKey)
		}
		r := b[len(saltMagic):]
		params = seal.Params{
			Time:      binary.BigEndian.Uint32(r),
			MemoryKiB: binary.BigEndian.Uint32(r[4:]),
			Threads:   r[8],
		}
		salt = r[9:]
		if err := params.Check(); err != nil {
			return nil, fmt.Errorf("failed to read salt file %s: %w: %w", path, ErrWrongKey, err)
		}
	}
	key, err := params.Key(p.pass, salt)
	if err != nil {
		return nil, fmt.Errorf("failed to derive storage key: %w", err)
	}
	return (*[KeySize]byte)(key), nil
}
