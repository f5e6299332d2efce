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

	"golang.org/x/crypto/argon2"
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
	if err := writeFileSync(path, key[:], 0o600); err != nil {
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

// Argon2Params are the argon2id parameters for Passphrase. They are stored
// with the salt, so changing the defaults does not break existing stores.
type Argon2Params struct {
	Time      uint32 // passes
	MemoryKiB uint32 // memory in KiB
	Threads   uint8
}

// DefaultArgon2Params follow the second recommendation of RFC 9106 (section
// 4): t=3, m=64 MiB, p=4. About 0.1–0.3 s on one core of a current machine;
// it runs once per Open.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}
}

// Passphrase derives the key from a passphrase with argon2id and the
// default parameters. A random 16-byte salt and the parameters are written
// to SaltFileName when the store is created. The passphrase should be long
// and generated: the derivation slows guessing, it does not prevent it.
func Passphrase(passphrase []byte) KeySource {
	return PassphraseWithParams(passphrase, DefaultArgon2Params())
}

// PassphraseWithParams is Passphrase with explicit parameters, used only
// when a store is created; an existing store uses the ones in its salt file.
func PassphraseWithParams(passphrase []byte, p Argon2Params) KeySource {
	return passphraseKey{pass: bytes.Clone(passphrase), params: p}
}

type passphraseKey struct {
	pass   []byte
	params Argon2Params
}

// Salt file: "kadre-argon2id-v1" || time u32 || memory u32 || threads u8 ||
// salt[16].
const saltMagic = "kadre-argon2id-v1"

const saltFileLen = len(saltMagic) + 4 + 4 + 1 + 16

// Bounds on parameters read from disk, so a damaged or hostile salt file
// cannot make Open allocate without limit.
const (
	maxArgonMemoryKiB = 4 << 20 // 4 GiB
	maxArgonTime      = 64
)

func (p passphraseKey) StorageKey(dir string, create bool) (*[KeySize]byte, error) {
	if len(p.pass) == 0 {
		return nil, fmt.Errorf("failed to derive storage key: %w: empty passphrase", ErrInvalid)
	}
	path := filepath.Join(dir, SaltFileName)
	b, err := os.ReadFile(path)
	var params Argon2Params
	var salt []byte
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		params = p.params
		if params.Time == 0 || params.MemoryKiB == 0 || params.Threads == 0 {
			return nil, fmt.Errorf("failed to derive storage key: %w: zero argon2 parameter", ErrInvalid)
		}
		salt = make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return nil, fmt.Errorf("failed to generate salt: %w", err)
		}
		b := []byte(saltMagic)
		b = binary.BigEndian.AppendUint32(b, params.Time)
		b = binary.BigEndian.AppendUint32(b, params.MemoryKiB)
		b = append(b, params.Threads)
		b = append(b, salt...)
		if err := writeFileSync(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("failed to write salt file: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("failed to read salt file %s: %w", path, err)
	default:
		if len(b) != saltFileLen || string(b[:len(saltMagic)]) != saltMagic {
			return nil, fmt.Errorf("failed to read salt file %s: %w: malformed", path, ErrWrongKey)
		}
		r := b[len(saltMagic):]
		params = Argon2Params{
			Time:      binary.BigEndian.Uint32(r),
			MemoryKiB: binary.BigEndian.Uint32(r[4:]),
			Threads:   r[8],
		}
		salt = r[9:]
		if params.Time == 0 || params.Time > maxArgonTime || params.MemoryKiB == 0 ||
			params.MemoryKiB > maxArgonMemoryKiB || params.Threads == 0 {
			return nil, fmt.Errorf("failed to read salt file %s: %w: parameters out of range", path, ErrWrongKey)
		}
	}
	var key [KeySize]byte
	copy(key[:], argon2.IDKey(p.pass, salt, params.Time, params.MemoryKiB, params.Threads, KeySize))
	return &key, nil
}

// writeFileSync creates path atomically: a temporary file is written,
// fsynced and linked into place, so a crash leaves either no file or the
// whole file, and an existing file is never replaced.
func writeFileSync(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
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
	// Link, unlike rename, fails if path exists.
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
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
