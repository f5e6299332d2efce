package client

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kadre/kadre/internal/fsx"
	"github.com/kadre/kadre/internal/seal"
	"github.com/kadre/kadre/policy"
	"github.com/kadre/kadre/rekey"
)

// Files of a user's home directory (SPEC.md §5.6).
const (
	IdentityFile = "identity.json" // the master seed, optionally passphrase-sealed, 0600
	GrantsFile   = "grants.json"   // the owner's grants and their holders, 0600
	ConfigFile   = "client.json"   // optional bootstrap addresses
)

// MinPassphraseLen is the shortest passphrase CreateIdentity accepts.
const MinPassphraseLen = 8

// identityAD is the associated data of a sealed seed.
const identityAD = "kadre identity v1"

// Errors about a user's identity file.
var (
	// ErrNoIdentity means the home directory holds no identity file.
	ErrNoIdentity = errors.New("client: no identity in this home directory")
	// ErrIdentityExists means CreateIdentity would replace an identity.
	ErrIdentityExists = errors.New("client: an identity already exists")
	// ErrWrongPassphrase means the passphrase does not open the identity.
	ErrWrongPassphrase = errors.New("client: wrong passphrase for the identity file")
	// ErrPassphraseNeeded means the identity is sealed and no passphrase
	// was given.
	ErrPassphraseNeeded = errors.New("client: the identity is passphrase-protected")
	// ErrWeakPassphrase means a new passphrase is shorter than
	// MinPassphraseLen.
	ErrWeakPassphrase = errors.New("client: passphrase shorter than 8 characters")
	// ErrIdentityFile means the identity file is damaged or of an unknown
	// version.
	ErrIdentityFile = errors.New("client: unreadable identity file")
)

// Passphrase returns the passphrase of a sealed identity when it is needed
// (a terminal prompt, an environment variable). It is called at most once
// per open.
type Passphrase func() ([]byte, error)

// identityDoc is identity.json: the 32-byte master seed every key of the
// user derives from (rekey.Keyring), in clear or sealed with
// XChaCha20-Poly1305 under argon2id(passphrase).
type identityDoc struct {
	Version  int    `json:"version"`
	Identity string `json:"identity"` // public, for reference
	Seed     string `json:"seed,omitempty"`
	KDF      string `json:"kdf,omitempty"` // "argon2id"
	Salt     string `json:"salt,omitempty"`
	Time     uint32 `json:"time,omitempty"`
	MemoryKB uint32 `json:"memory_kib,omitempty"`
	Threads  uint8  `json:"threads,omitempty"`
	Sealed   string `json:"sealed_seed,omitempty"` // nonce ‖ ciphertext ‖ tag
}

// CreateIdentity creates a new user identity in home: a random master seed
// in IdentityFile (mode 0600, home created 0700), sealed under passphrase
// unless it is nil. It refuses to replace an existing identity
// (ErrIdentityExists) unless replace is set: the grants made to the old
// identity, and by it, become unusable.
func CreateIdentity(home string, passphrase []byte, replace bool) (*rekey.Keyring, error) {
	path := filepath.Join(home, IdentityFile)
	if _, err := os.Stat(path); err == nil && !replace {
		return nil, fmt.Errorf("%w in %s", ErrIdentityExists, path)
	}
	if passphrase != nil && len(passphrase) < MinPassphraseLen {
		return nil, ErrWeakPassphrase
	}
	seed := make([]byte, rekey.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	keys, err := rekey.NewKeyring(seed)
	if err != nil {
		return nil, err
	}
	doc := identityDoc{Version: 1, Identity: policy.IdentityOf(keys).String()}
	if passphrase == nil {
		doc.Seed = hex.EncodeToString(seed)
	} else {
		s, err := seal.SealPassphrase(passphrase, seed, []byte(identityAD), seal.DefaultParams())
		if err != nil {
			return nil, err
		}
		doc.KDF, doc.Salt, doc.Sealed = "argon2id", hex.EncodeToString(s.Salt), hex.EncodeToString(s.Box)
		doc.Time, doc.MemoryKB, doc.Threads = s.Params.Time, s.Params.MemoryKiB, s.Params.Threads
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := fsx.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write identity: %w", err)
	}
	return keys, nil
}

// LoadIdentity opens the identity in home; passphrase is asked only if the
// file is sealed.
func LoadIdentity(home string, passphrase Passphrase) (*rekey.Keyring, error) {
	path := filepath.Join(home, IdentityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s)", ErrNoIdentity, home)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read identity: %w", err)
	}
	var doc identityDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrIdentityFile, path, err)
	}
	seed, err := doc.open(passphrase)
	if err != nil {
		return nil, err
	}
	return rekey.NewKeyring(seed)
}

// IsSealed reports whether home's identity is passphrase-protected.
func IsSealed(home string) bool {
	b, err := os.ReadFile(filepath.Join(home, IdentityFile))
	if err != nil {
		return false
	}
	var doc identityDoc
	return json.Unmarshal(b, &doc) == nil && doc.KDF != ""
}

func (d *identityDoc) open(passphrase Passphrase) ([]byte, error) {
	if d.Version != 1 {
		return nil, fmt.Errorf("%w: version %d is not supported", ErrIdentityFile, d.Version)
	}
	if d.KDF == "" {
		seed, err := hex.DecodeString(d.Seed)
		if err != nil || len(seed) != rekey.SeedSize {
			return nil, fmt.Errorf("%w: the seed is not 64 hex characters", ErrIdentityFile)
		}
		return seed, nil
	}
	if d.KDF != "argon2id" {
		return nil, fmt.Errorf("%w: key derivation %q is not supported", ErrIdentityFile, d.KDF)
	}
	salt, err1 := hex.DecodeString(d.Salt)
	box, err2 := hex.DecodeString(d.Sealed)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("%w: sealed seed is not hex", ErrIdentityFile)
	}
	s := seal.Sealed{Params: seal.Params{Time: d.Time, MemoryKiB: d.MemoryKB, Threads: d.Threads}, Salt: salt, Box: box}
	if err := s.Params.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentityFile, err)
	}
	if passphrase == nil {
		return nil, ErrPassphraseNeeded
	}
	p, err := passphrase()
	if err != nil {
		return nil, err
	}
	seed, err := s.Open(p, []byte(identityAD))
	if errors.Is(err, seal.ErrOpen) || (err == nil && len(seed) != rekey.SeedSize) {
		return nil, ErrWrongPassphrase
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentityFile, err)
	}
	return seed, nil
}
