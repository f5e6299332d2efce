package kfile

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"
)

// stream is the body's STREAM over XChaCha20-Poly1305 (SPEC.md §7.3). The XChaCha20-Poly1305 nonce of chunk i is
//
//	0x00 × 15 ‖ uint64_be(i) ‖ final (0x01 on the last chunk, else 0x00)
//
// and that of the signature after group g (version 2) is
//
//	0x00 × 15 ‖ uint64_be(g) ‖ 0x02 | final (0x03 after the last group)
//
// so no chunk and no signature ever share a nonce.
//
// XChaCha20-Poly1305(K, N) is ChaCha20-Poly1305 under the subkey
// HChaCha20(K, N[0:16]) with the 12-byte nonce 0x00 × 4 ‖ N[16:24]. N[0:16]
// is fifteen zero bytes and the counter's top byte, which is zero for every
// file shorter than 2^72 bytes, so the subkey is computed once per file
// rather than once per chunk, and chunks are sealed with the IETF AEAD
// under it: the bytes are those of XChaCha20-Poly1305 (TestStreamIsXChaCha)
// and the per-chunk cost is ChaCha20-Poly1305's alone.
type stream struct {
	key   [32]byte
	aead  cipher.AEAD // under HChaCha20(key, 0x00 × 15 ‖ hi)
	hi    byte
	nonce [chacha20poly1305.NonceSize]byte
}

func newStream(key *[32]byte) (*stream, error) {
	s := &stream{key: *key}
	if err := s.subkey(0); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *stream) subkey(hi byte) error {
	var n [16]byte
	n[15] = hi
	sub, err := chacha20.HChaCha20(s.key[:], n[:])
	if err != nil {
		return fmt.Errorf("kfile: hchacha20: %w", err)
	}
	aead, err := chacha20poly1305.New(sub)
	clear(sub)
	if err != nil {
		return fmt.Errorf("kfile: chacha20poly1305: %w", err)
	}
	s.aead, s.hi = aead, hi
	return nil
}

const (
	flagFinal = 0x01
	flagSig   = 0x02
)

func finalFlag(final bool) byte {
	if final {
		return flagFinal
	}
	return 0
}

// setNonce prepares the 12-byte nonce of item i with its flag byte.
func (s *stream) setNonce(i uint64, flag byte) error {
	if hi := byte(i >> 56); hi != s.hi {
		if err := s.subkey(hi); err != nil {
			return err
		}
	}
	binary.BigEndian.PutUint64(s.nonce[3:11], i)
	s.nonce[3] = 0 // the counter's top byte went into the subkey
	s.nonce[11] = flag
	return nil
}

// seal appends chunk i, encrypted, to dst. pt and dst may alias exactly.
func (s *stream) seal(dst, pt []byte, i uint64, final bool) ([]byte, error) {
	if err := s.setNonce(i, finalFlag(final)); err != nil {
		return nil, err
	}
	return s.aead.Seal(dst, s.nonce[:], pt, nil), nil
}

// open appends the plaintext of chunk i to dst if ct authenticates as chunk
// i with the given final flag. On failure the output region is zeroed and
// ct is left as it was, so the caller may try the other flag (when dst
// does not alias ct).
func (s *stream) open(dst, ct []byte, i uint64, final bool) ([]byte, bool) {
	if err := s.setNonce(i, finalFlag(final)); err != nil {
		return nil, false
	}
	pt, err := s.aead.Open(dst, s.nonce[:], ct, nil)
	return pt, err == nil
}

// sealSig appends the sealed signature of group g to dst.
func (s *stream) sealSig(dst, sig []byte, g uint64, final bool) ([]byte, error) {
	if err := s.setNonce(g, flagSig|finalFlag(final)); err != nil {
		return nil, err
	}
	return s.aead.Seal(dst, s.nonce[:], sig, nil), nil
}

// openSig opens the sealed signature of group g into dst.
func (s *stream) openSig(dst, ct []byte, g uint64, final bool) ([]byte, bool) {
	if err := s.setNonce(g, flagSig|finalFlag(final)); err != nil {
		return nil, false
	}
	pt, err := s.aead.Open(dst, s.nonce[:], ct, nil)
	return pt, err == nil
}
