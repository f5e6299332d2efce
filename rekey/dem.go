package rekey

import (
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// demOverhead is the ciphertext expansion: a 24-byte nonce and a 16-byte tag.
const demOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// demKey is HKDF-SHA256(ikm = compressed shared point, no salt, empty info).
func demKey(keySeed *[33]byte) []byte {
	k := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, keySeed[:], nil, nil), k); err != nil {
		panic("rekey: hkdf failed: " + err.Error())
	}
	return k
}

// demEncrypt returns nonce ‖ XChaCha20-Poly1305(pt, aad) ‖ tag.
func demEncrypt(r io.Reader, keySeed *[33]byte, pt, aad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(demKey(keySeed))
	if err != nil {
		return nil, err
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pt)+aead.Overhead())
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	return aead.Seal(out, out, pt, aad), nil
}

func demDecrypt(keySeed *[33]byte, ct, aad []byte) ([]byte, error) {
	if len(ct) < demOverhead {
		return nil, ErrDecryption
	}
	aead, err := chacha20poly1305.NewX(demKey(keySeed))
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	pt, err := aead.Open(nil, ct[:n], ct[n:], aad)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}
