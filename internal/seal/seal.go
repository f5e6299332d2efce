// Package seal protects kadre's small secrets at rest: a user's master seed
// (the identity file), a node's identity key and storage key. It is the one
// home of the passphrase derivation (argon2id, its parameters and their
// bounds) and of the authenticated encryption that seals a secret
// (XChaCha20-Poly1305 with associated data naming what is sealed).
//
// # Security
//
// A sealed secret is as strong as the key that seals it: a random key file
// or environment key, or a passphrase stretched with argon2id (RFC 9106's
// second recommended parameters by default: t=3, 64 MiB, 4 lanes), which
// slows guessing but does not make a weak passphrase strong. Parameters
// read from disk are bounded before use, so a damaged or hostile file cannot
// make a program allocate without limit. Opening fails with one opaque
// error, ErrOpen, whatever was wrong (passphrase, key, associated data,
// bytes).
package seal

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a sealing key.
const KeySize = chacha20poly1305.KeySize

// SaltSize is the size of an argon2id salt.
const SaltSize = 16

// Overhead is what Seal adds to a plaintext: the nonce and the tag.
const Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// ErrOpen means a sealed secret did not open: a wrong key or passphrase,
// other associated data, or modified bytes.
var ErrOpen = errors.New("seal: wrong key or passphrase, or the sealed data was modified")

// ErrParams means argon2id parameters are zero or out of their bounds.
var ErrParams = errors.New("seal: argon2id parameters out of range")

// Params are argon2id parameters. They are stored with every salt, so
// changing the defaults never breaks what was sealed before.
type Params struct {
	Time      uint32 // passes, 1..MaxTime
	MemoryKiB uint32 // memory in KiB, 8·Threads..MaxMemoryKiB
	Threads   uint8  // lanes, ≥ 1
}

// Bounds on parameters read from files.
const (
	MaxTime      = 64
	MaxMemoryKiB = 4 << 20 // 4 GiB
)

// DefaultParams are RFC 9106's second recommendation (section 4): t=3,
// m=64 MiB, p=4; about 0.1–0.3 s on one core of a current machine.
func DefaultParams() Params { return Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4} }

// Check enforces the bounds.
func (p Params) Check() error {
	if p.Time == 0 || p.Time > MaxTime || p.Threads == 0 ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB {
		return fmt.Errorf("%w: t=%d m=%d KiB p=%d (need 1 ≤ t ≤ %d, 8·p ≤ m ≤ %d KiB, p ≥ 1)",
			ErrParams, p.Time, p.MemoryKiB, p.Threads, MaxTime, MaxMemoryKiB)
	}
	return nil
}

// Key derives a sealing key from a passphrase and a salt with argon2id.
func (p Params) Key(passphrase, salt []byte) (*[KeySize]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, errors.New("seal: empty passphrase")
	}
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("seal: salt of %d bytes (want %d)", len(salt), SaltSize)
	}
	var k [KeySize]byte
	copy(k[:], argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, KeySize))
	return &k, nil
}

// NewSalt returns a random salt.
func NewSalt() ([]byte, error) {
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("seal: failed to generate a salt: %w", err)
	}
	return salt, nil
}

// Seal encrypts plaintext under key, binding ad: nonce (24, random) ‖
// XChaCha20-Poly1305 ciphertext ‖ tag.
func Seal(key *[KeySize]byte, plaintext, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: failed to generate a nonce: %w", err)
	}
	return aead.Seal(out, out, plaintext, ad), nil
}

// Open reverses Seal; any failure is ErrOpen.
func Open(key *[KeySize]byte, sealed, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, err
	}
	if len(sealed) < Overhead {
		return nil, ErrOpen
	}
	n := aead.NonceSize()
	pt, err := aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Sealed is a secret sealed under a passphrase: the argon2id parameters and
// salt, and the sealed bytes.
type Sealed struct {
	Params Params
	Salt   []byte
	Box    []byte
}

// SealPassphrase seals plaintext under a key derived from passphrase with
// fresh salt and parameters p.
func SealPassphrase(passphrase, plaintext, ad []byte, p Params) (*Sealed, error) {
	salt, err := NewSalt()
	if err != nil {
		return nil, err
	}
	key, err := p.Key(passphrase, salt)
	if err != nil {
		return nil, err
	}
	box, err := Seal(key, plaintext, ad)
	if err != nil {
		return nil, err
	}
	return &Sealed{Params: p, Salt: salt, Box: box}, nil
}

// Open derives the key from passphrase and opens the secret; a wrong
// passphrase is ErrOpen, parameters out of bounds ErrParams.
func (s *Sealed) Open(passphrase, ad []byte) ([]byte, error) {
	key, err := s.Params.Key(passphrase, s.Salt)
	if err != nil {
		return nil, err
	}
	return Open(key, s.Box, ad)
}
