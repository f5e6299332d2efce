package store

import (
	"crypto/cipher"
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealVersion is the first byte of every sealed value (SPEC.md §6.3). It is also bound into the associated data so a future
// format cannot be confused with this one.
const sealVersion byte = 1

// sealOverhead is what sealing adds to a plaintext: version, nonce, tag.
const sealOverhead = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// sealer binds every value to the database and key it is stored under.
// Nonces are random: with 24-byte nonces the collision probability stays
// negligible for far more values than a node will ever write under one key.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key *[32]byte) (*sealer, error) {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		return nil, fmt.Errorf("failed to create cipher: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// ad is the associated data: version || len(db) || db || key. The length
// prefix keeps (db, key) pairs unambiguous.
func sealAD(dst []byte, db string, key []byte) []byte {
	dst = append(dst, sealVersion, byte(len(db)))
	dst = append(dst, db...)
	return append(dst, key...)
}

// seal returns version || nonce || ciphertext || tag.
func (s *sealer) seal(db string, key, plaintext []byte) []byte {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, sealOverhead+len(plaintext))
	out[0] = sealVersion
	nonce := out[1:]
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand.Read never returns an error since Go 1.24; it
		// crashes the program itself if the kernel fails it.
		panic("store: crypto/rand failed: " + err.Error())
	}
	var adBuf [128]byte
	ad := sealAD(adBuf[:0], db, key)
	return s.aead.Seal(out, nonce, plaintext, ad)
}

// open authenticates and decrypts a sealed value read from db under key. Any
// failure is ErrCorrupt, without saying which check failed. value may point
// into the LMDB map: the result never aliases it.
func (s *sealer) open(db string, key, value []byte) ([]byte, error) {
	if len(value) < sealOverhead || value[0] != sealVersion {
		return nil, ErrCorrupt
	}
	nonce := value[1 : 1+chacha20poly1305.NonceSizeX]
	ct := value[1+chacha20poly1305.NonceSizeX:]
	var adBuf [128]byte
	ad := sealAD(adBuf[:0], db, key)
	pt, err := s.aead.Open(make([]byte, 0, len(ct)-chacha20poly1305.Overhead), nonce, ct, ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}
