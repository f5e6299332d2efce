package store

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// FuzzImportParser feeds arbitrary bytes to the export reader and record
// decoder: they must never panic, never allocate from an unauthenticated
// length beyond one frame, and only yield records from authentic frames.
func FuzzImportParser(f *testing.F) {
	key := exportKey(5)
	s := openTest(f, f.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(f, s, mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour)), t0)
	mustRevoke(f, s, owner, recipient, "/b", 3, t0)
	var buf bytes.Buffer
	if _, err := s.Export(&buf, key, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:exportHeaderLen])
	f.Add([]byte(exportMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Authentic frames can carry any plaintext the exporter chose.
		if len(data) > 0 {
			decodeRecord(data[0], data[1:])
		}
		er, err := newExportReader(bytes.NewReader(data), key)
		if err != nil {
			return
		}
		for range 1 << 12 {
			kind, pt, err := er.next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrBadExport) {
					t.Fatalf("unexpected error type: %v", err)
				}
				return
			}
			decodeRecord(kind, pt)
		}
	})
}

// FuzzSealedValue opens arbitrary bytes as sealed values of every database
// and decodes the plaintexts: corrupt input must be ErrCorrupt, never a
// panic, and a value must only open under the key it was sealed for.
func FuzzSealedValue(f *testing.F) {
	var key [KeySize]byte
	copy(key[:], testKey(6))
	sl, err := newSealer(&key)
	if err != nil {
		f.Fatal(err)
	}
	g := storedGrant{seq: 1, expires: 99, record: []byte("record")}
	tomb := storedTomb{seq: 2, revokedAt: 5, deleted: true}
	mark := storedMark{seq: 3, keepUntil: 7}
	k := []byte("key")
	f.Add(sl.seal(dbGrants, k, g.encode()), k)
	f.Add(sl.seal(dbTombs, k, tomb.encode()), k)
	f.Add(sl.seal(dbSeqs, k, mark.encode()), k)
	f.Add([]byte{sealVersion}, k)
	f.Fuzz(func(t *testing.T, value, k []byte) {
		for _, db := range []string{dbGrants, dbTombs, dbSeqs, dbMeta} {
			pt, err := sl.open(db, k, value)
			if err != nil {
				if err != ErrCorrupt {
					t.Fatalf("open error %v, want ErrCorrupt", err)
				}
				continue
			}
			// Authentic: it must not open under another key.
			if _, err := sl.open(db, append(bytes.Clone(k), 0), value); err == nil {
				t.Fatal("value opened under another key")
			}
			decodeGrant(pt)
			decodeTomb(pt)
			decodeMark(pt)
		}
		// The decoders alone, on raw bytes.
		decodeGrant(value)
		decodeTomb(value)
		decodeMark(value)
		splitDeadlineKey(value)
	})
}

// FuzzImportApply builds authentic exports (sealed with the right key)
// from arbitrary record plaintexts and imports them into a store: whatever
// an authenticated peer sends, Import must refuse or apply it without
// panicking, and the store must stay usable (Lookup, Prune).
func FuzzImportApply(f *testing.F) {
	key := exportKey(5)
	s := openTest(f, f.TempDir(), Options{})
	g := mkGrant(pk(alice), pk(bob), "/a", 1, t0.Add(time.Hour))
	var gkb [grantKeyLen]byte
	sg := storedGrant{seq: 1, expires: g.Expires.Unix(), id: g.ID, record: g.Record[:40]}
	seed := append([]byte{kindGrant}, append(grantKey(&gkb, &g.Owner, &g.Recipient, &g.PathHash), sg.encode()...)...)
	f.Add(seed)
	tomb := storedTomb{seq: 9, revokedAt: t0.Unix()}
	f.Add(append([]byte{kindTomb}, append(tombKey(&gkb, &g.Owner, &g.Recipient, &g.PathHash), tomb.encode()...)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var buf bytes.Buffer
		ew, err := newExportWriter(&buf, key)
		if err != nil {
			t.Fatal(err)
		}
		// data = (kind, len, plaintext)*; kind 0xff is not a record kind.
		for len(data) >= 2 {
			kind, n := data[0], int(data[1])*8
			data = data[2:]
			if kind == kindEnd {
				kind = kindGrant
			}
			if n > len(data) || n == 0 {
				n = len(data)
			}
			if err := ew.frame(kind, data[:n]); err != nil {
				t.Fatal(err)
			}
			data = data[n:]
		}
		if err := ew.finish(); err != nil {
			t.Fatal(err)
		}
		_, err = s.Import(&buf, key, t0)
		if err != nil && !errors.Is(err, ErrBadExport) {
			t.Fatalf("Import: %v", err)
		}
		owner, recipient := g.Owner, g.Recipient
		if _, err := s.lookup(&owner, &recipient, [][32]byte{ph("/"), g.PathHash}, t0); err != nil &&
			!errors.Is(err, ErrNotGranted) && !errors.Is(err, ErrRevoked) && !errors.Is(err, ErrExpired) {
			t.Fatalf("Lookup after import: %v", err)
		}
		if _, err := s.Prune(t0.Add(time.Duration(len(data)) * time.Hour)); err != nil {
			t.Fatalf("Prune after import: %v", err)
		}
	})
}
