package kfile_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/kadre/kadre/kfile"
	"github.com/kadre/kadre/policy"
)

var benchSizes = []struct {
	name string
	n    int
}{{"1MiB", 1 << 20}, {"64MiB", 64 << 20}}

// BenchmarkEncrypt is the streaming writer, header included, into
// io.Discard: one Write of the whole plaintext, then Close.
func BenchmarkEncrypt(b *testing.B) {
	f := sharedFixture(b)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			pt := make([]byte, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				w, err := kfile.NewWriter(io.Discard, f.h, f.key)
				if err != nil {
					b.Fatal(err)
				}
				w.Write(pt)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecrypt is the streaming reader of a body in memory into
// io.Discard (io.Copy uses Reader.WriteTo).
func BenchmarkDecrypt(b *testing.B) {
	f := sharedFixture(b)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			body := f.encrypt(b, make([]byte, s.n), 0)[f.h.Len():]
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				r, err := kfile.NewReader(bytes.NewReader(body), f.h, f.key)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != int64(s.n) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkXChaCha20Poly1305Seal is the baseline of Encrypt: x/crypto's
// XChaCha20-Poly1305 sealing the same plaintext buffer in 64 KiB chunks
// into one chunk buffer, one counter nonce per chunk, no I/O.
func BenchmarkXChaCha20Poly1305Seal(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			aead, _ := chacha20poly1305.NewX(make([]byte, 32))
			pt := make([]byte, s.n)
			out := make([]byte, kfile.EncryptedChunkSize)
			var nonce [24]byte
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				for i := 0; i < s.n; i += kfile.ChunkSize {
					binary.BigEndian.PutUint64(nonce[15:], uint64(i))
					aead.Seal(out[:0], nonce[:], pt[i:i+kfile.ChunkSize], nil)
				}
			}
		})
	}
}

// BenchmarkXChaCha20Poly1305Open is the baseline of Decrypt: opening a
// ciphertext of the same size, chunk by chunk, into one chunk buffer.
func BenchmarkXChaCha20Poly1305Open(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			aead, _ := chacha20poly1305.NewX(make([]byte, 32))
			var nonce [24]byte
			zero := make([]byte, kfile.ChunkSize)
			var ct []byte
			for range s.n / kfile.ChunkSize {
				ct = aead.Seal(ct, nonce[:], zero, nil)
			}
			pt := make([]byte, kfile.ChunkSize)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				for i := 0; i < len(ct); i += kfile.EncryptedChunkSize {
					if _, err := aead.Open(pt[:0], nonce[:], ct[i:i+kfile.EncryptedChunkSize], nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReadAt4KiB reads 4 KiB at scattered offsets of a 64 MiB file:
// one chunk decryption per read.
func BenchmarkReadAt4KiB(b *testing.B) {
	f := sharedFixture(b)
	const n = 64 << 20
	file := f.encrypt(b, make([]byte, n), 0)
	ra, err := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), f.h, f.key)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	r := prng(1)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		off := r.Int64N(n/kfile.ChunkSize) * kfile.ChunkSize
		if _, err := ra.ReadAt(buf, off+1000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewHeader is the owner's per-file cost for a path of three
// levels: three Umbral encapsulations and the header MAC.
func BenchmarkNewHeader(b *testing.B) {
	f := sharedFixture(b)
	p := policy.MustNormalizePath("/docs/report.txt")
	levels := kfile.OwnerLevels(f.keyring, p, nil)
	me := ownerAuthor(f.keyring)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := kfile.NewHeader(f.owner, p, levels, me); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseHeader is the reader's per-file cost for the same header:
// three capsule self-checks.
func BenchmarkParseHeader(b *testing.B) {
	raw := sharedFixture(b).h.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kfile.ParseHeader(raw); err != nil {
			b.Fatal(err)
		}
	}
}
