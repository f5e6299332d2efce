package node

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/internal/seal"
	"github.com/kadre/kadre/rekey"
	"github.com/kadre/kadre/store"
)

// The node's identity key at rest (SPEC.md §8.7): sealed under a key
// derived from the storage key, so that whoever takes the disk without the
// storage key (a passphrase, a key kept elsewhere) cannot impersonate the
// node, and refused when group or others may read it.
//
//	identity.key = "kadre-node-identity-v1 " ‖ hex(nonce (24) ‖ XChaCha20-Poly1305(k, secret key (32), ad) ‖ tag (16)) ‖ "\n"
//	k            = HKDF-SHA256(storage key, salt = "", info = "kadre/node-identity/v1")
//	ad           = "kadre-node-identity-v1"
//
// A key file of the first releases (64 hex characters in clear) is read
// once and rewritten sealed at the next start.
const identityMagic = "kadre-node-identity-v1"

// ErrIdentityMode means the identity key file may be read by group or
// others.
var ErrIdentityMode = errors.New("node: the identity key file is readable by others")

// capturedKey is a store key source that keeps a copy of the key the store
// was opened with (store.Open clears its own), so that the node seals its
// identity under the same source without asking it twice (a passphrase
// costs an argon2id derivation).
type capturedKey struct {
	src store.KeySource
	key *[store.KeySize]byte
}

func (c *capturedKey) StorageKey(dir string, create bool) (*[store.KeySize]byte, error) {
	k, err := c.src.StorageKey(dir, create)
	if err != nil {
		return nil, err
	}
	c.key = new([store.KeySize]byte)
	*c.key = *k
	return k, nil
}

// openStore opens the store of dataDir with opt, its key source (nil:
// the store's key file) captured, and returns it with the identity's
// sealing key derived from the same storage key.
func openStore(dataDir string, opt store.Options) (*store.Store, *[seal.KeySize]byte, error) {
	if opt.Key == nil {
		opt.Key = store.KeyFile("")
	}
	ck := &capturedKey{src: opt.Key}
	opt.Key = ck
	st, err := store.Open(filepath.Join(dataDir, StoreDir), opt)
	if err != nil {
		return nil, nil, err
	}
	sealKey, err := ck.identitySealKey()
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, sealKey, nil
}

// identitySealKey derives the identity's sealing key from the storage key
// and forgets the storage key.
func (c *capturedKey) identitySealKey() (*[seal.KeySize]byte, error) {
	if c.key == nil {
		return nil, errors.New("node: no storage key")
	}
	defer clear(c.key[:])
	return identitySealKey(c.key)
}

// identitySealKey derives the identity's sealing key from a storage key.
func identitySealKey(k *[store.KeySize]byte) (*[seal.KeySize]byte, error) {
	b, err := hkdf.Key(sha256.New, k[:], nil, "kadre/node-identity/v1", seal.KeySize)
	if err != nil {
		return nil, err
	}
	return (*[seal.KeySize]byte)(b), nil
}

// readIdentity reads the identity key file at path, sealed (k opens it) or
// in clear (legacy: plain is then true). A file group or others may read is
// refused before it is read.
func readIdentity(path string, k *[seal.KeySize]byte) (sk *rekey.SecretKey, plain bool, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("%w: %s has mode %v (chmod 600 it, and check who could have read it)", ErrIdentityMode, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	text := string(bytes.TrimSpace(b))
	if sealed, ok := strings.CutPrefix(text, identityMagic+" "); ok {
		raw, err := hex.DecodeString(sealed)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s is not hex: %w", ErrIdentityKey, path, err)
		}
		pt, err := seal.Open(k, raw, []byte(identityMagic))
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s does not open with this storage key (it is sealed under the key it was created with)", ErrIdentityKey, path)
		}
		defer clear(pt)
		sk, err := rekey.ParseSecretKey(pt)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s: %w", ErrIdentityKey, path, err)
		}
		return sk, false, nil
	}
	raw, err := hex.DecodeString(text)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s is neither sealed nor hex", ErrIdentityKey, path)
	}
	defer clear(raw)
	sk, err = rekey.ParseSecretKey(raw)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrIdentityKey, path, err)
	}
	return sk, true, nil
}

// sealedIdentity is the content of an identity key file for sk.
func sealedIdentity(sk *rekey.SecretKey, k *[seal.KeySize]byte) ([]byte, error) {
	raw := sk.Bytes()
	defer clear(raw)
	ct, err := seal.Seal(k, raw, []byte(identityMagic))
	if err != nil {
		return nil, err
	}
	return []byte(identityMagic + " " + hex.EncodeToString(ct) + "\n"), nil
}

// writeIdentity creates the identity key file (0600, atomically); it fails
// if one exists.
func writeIdentity(path string, sk *rekey.SecretKey, k *[seal.KeySize]byte) error {
	b, err := sealedIdentity(sk, k)
	if err != nil {
		return err
	}
	return fsx.CreateFile(path, b, 0o600)
}

// loadOrCreateIdentity reads the identity key, creating a fresh one on
// first start and sealing a key found in clear.
func loadOrCreateIdentity(path string, k *[seal.KeySize]byte, log *slog.Logger) (*rekey.SecretKey, error) {
	sk, plain, err := readIdentity(path, k)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sk = rekey.GenerateSecretKey()
		if err := writeIdentity(path, sk, k); err != nil {
			return nil, fmt.Errorf("failed to write identity key: %w", err)
		}
		return sk, nil
	case errors.Is(err, ErrIdentityKey), errors.Is(err, ErrIdentityMode):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("failed to read identity key: %w", err)
	case plain:
		b, err := sealedIdentity(sk, k)
		if err != nil {
			return nil, err
		}
		if err := fsx.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("failed to seal the identity key: %w", err)
		}
		log.Warn("the identity key was stored in clear: sealed it under the storage key (copies of the old file, and backups of it, still hold it in clear)", "file", path)
	}
	return sk, nil
}
