package kfile_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/kadre/kadre/kfile"
)

// FuzzReadHeader: the parser never panics, and a header it accepts is the
// canonical encoding of what it parsed (byte-exact round trip), read the
// same way from a stream, which it leaves at the first byte after it.
func FuzzReadHeader(f *testing.F) {
	for _, path := range []string{"/", "/docs/report.txt", "/a/b/c/d/e/f/g"} {
		fx := newFixture(f, path, 5)
		b := fx.h.Bytes()
		f.Add(b)
		f.Add(append(bytes.Clone(b), 0))
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{})
	f.Add([]byte(kfile.Magic))
	f.Add([]byte(kfile.Magic + "\x02"))
	f.Add([]byte(kfile.Magic + "\x03"))
	for _, v := range readV1Vectors(f) {
		if v.File != "" {
			b, _ := hex.DecodeString(v.Header)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := kfile.ParseHeader(data)
		r := bytes.NewReader(data)
		hs, serr := kfile.ReadHeader(r)
		if err == nil {
			if !bytes.Equal(h.Bytes(), data) || h.Len() != len(data) {
				t.Fatal("accepted header does not round-trip")
			}
			if serr != nil || !bytes.Equal(hs.Bytes(), data) || r.Len() != 0 {
				t.Fatalf("ReadHeader disagrees with ParseHeader: %v", serr)
			}
			if p, clear := h.ClearPath(); len(h.Capsules()) != h.Levels() || (clear && h.Levels() != p.Depth()+1) {
				t.Fatal("accepted header with inconsistent levels")
			}
			return
		}
		if serr == nil {
			// The stream form takes a header followed by anything.
			if !bytes.Equal(hs.Bytes(), data[:hs.Len()]) || r.Len() != len(data)-hs.Len() || hs.Len() == len(data) {
				t.Fatal("ReadHeader accepted what ParseHeader refused, and not for trailing bytes")
			}
		}
		for _, e := range []error{kfile.ErrNotKadreFile, kfile.ErrUnsupportedVersion, kfile.ErrUnsupportedAlgorithm, kfile.ErrMalformedHeader, kfile.ErrTruncated} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("error without a sentinel: %v", err)
	})
}

// FuzzReader: under a fixed header and key, a body an attacker made
// without the key never yields plaintext that was not authenticated.
// Every body the stream reader accepts is the canonical encryption of what
// it returned; on error, what it returned is whole chunks that are
// byte-identical to the encryption of that plaintext, at their positions.
// The ReaderAt agrees with the stream reader.
//
// Seeds are up to 65 KiB, which makes Go's default minimization of each new
// input (up to 60 s) dominate a run; fuzz with a short one:
//
//	go test ./kfile -run '^$' -fuzz '^FuzzReader$' -fuzzminimizetime 2s
func FuzzReader(f *testing.F) {
	fx := newFixture(f, "/docs/report.txt", 6)
	hl := fx.h.Len()
	for _, n := range []int{0, 1, 100, C - 1, C, C + 100} {
		f.Add(fx.encrypt(f, randomBytes(n, uint64(n)), 0)[hl:])
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := kfile.NewReader(bytes.NewReader(body), fx.h, fx.key)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(r)
		if err == nil {
			file := fx.encrypt(t, out, 0)
			if !bytes.Equal(file[hl:], body) {
				t.Fatal("accepted a body that is not the canonical encryption of its plaintext")
			}
		} else {
			if !errors.Is(err, kfile.ErrCorrupt) && !errors.Is(err, kfile.ErrTruncated) && !errors.Is(err, kfile.ErrBadSignature) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			if len(out)%G != 0 {
				t.Fatalf("released %d bytes: not whole groups", len(out))
			}
			if len(out) > 0 {
				// The groups released must be the non-final groups that
				// encrypt them, byte for byte.
				var enc bytes.Buffer
				w, werr := kfile.NewWriter(&enc, fx.h, fx.key)
				if werr != nil {
					t.Fatal(werr)
				}
				w.Write(out)
				w.Write([]byte{0}) // forces the last full chunk out as non-final
				n := len(out) / G * (kfile.GroupChunks*kfile.EncryptedChunkSize + kfile.GroupSigSize)
				if !bytes.Equal(enc.Bytes()[hl:hl+n], body[:n]) {
					t.Fatal("released plaintext of chunks that are not authentic")
				}
			}
		}
		file := append(fx.h.Bytes(), body...)
		ra, raErr := kfile.NewReaderAt(bytes.NewReader(file), int64(len(file)), fx.h, fx.key)
		if raErr != nil {
			if err == nil {
				t.Fatalf("ReaderAt refuses what the stream reader accepts: %v", raErr)
			}
			return
		}
		all := make([]byte, ra.Size())
		n, raErr := ra.ReadAt(all, 0)
		if (raErr == nil || raErr == io.EOF) && n == len(all) {
			if err != nil || !bytes.Equal(all, out) {
				t.Fatalf("ReaderAt read %d bytes where the stream reader failed: %v", n, err)
			}
		} else if err == nil {
			t.Fatalf("ReaderAt fails where the stream reader succeeded: %v", raErr)
		}
	})
}
