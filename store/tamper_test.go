package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"
)

// TestTamperFlippedByteOnDisk flips bytes of a sealed grant inside data.mdb
// and requires every flip to be detected, by Get and by Lookup.
func TestTamperFlippedByteOnDisk(t *testing.T) {
	dir := t.TempDir()
	owner, recipient := pk(alice), pk(bob)
	g := mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour))
	s, err := Open(dir, Options{Key: RawKey(testKey(7))})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, g, t0)
	s.Close()

	var sealed []byte
	var gkb [grantKeyLen]byte
	rawUpdate(t, dir, dbGrants, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
		v, err := txn.Get(dbi, grantKey(&gkb, &owner, &recipient, &g.PathHash))
		sealed = bytes.Clone(v)
		return err
	})
	path := filepath.Join(dir, "data.mdb")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(orig, sealed) != 1 {
		t.Fatalf("sealed value found %d times in data.mdb", bytes.Count(orig, sealed))
	}
	off := bytes.Index(orig, sealed)
	positions := []int{0, 1, 24, 25, len(sealed) / 2, len(sealed) - 16, len(sealed) - 1}
	for i := 2; i < len(sealed); i += 53 {
		positions = append(positions, i)
	}
	hs := pathHashes("/", "/a")
	for _, p := range positions {
		mod := bytes.Clone(orig)
		mod[off+p] ^= 0x20
		if err := os.WriteFile(path, mod, 0o600); err != nil {
			t.Fatal(err)
		}
		// Every write back of the file is a rollback of the store to the
		// state it was copied in (SPEC.md §8.8): accept it here.
		s, err := Open(dir, Options{Key: RawKey(testKey(7)), AcceptRollback: true})
		if err != nil {
			t.Fatalf("byte %d: Open: %v", p, err)
		}
		_, gerr := s.get(&owner, &recipient, &g.PathHash)
		_, lerr := s.lookup(&owner, &recipient, hs, t0)
		s.Close()
		if !errors.Is(gerr, ErrCorrupt) || !errors.Is(lerr, ErrCorrupt) {
			t.Fatalf("byte %d flipped: Get %v, Lookup %v, want ErrCorrupt", p, gerr, lerr)
		}
	}
	os.WriteFile(path, orig, 0o600)
	s = openTest(t, dir, Options{AcceptRollback: true})
	if _, err := s.lookup(&owner, &recipient, hs, t0); err != nil {
		t.Fatalf("restored file: %v", err)
	}
}

// TestTamperMovedValue moves sealed values to other keys and databases with
// raw LMDB access: the associated data binds each to where it was written.
func TestTamperMovedValue(t *testing.T) {
	owner, recipient := pk(alice), pk(bob)
	victim := pk(dave)
	g := mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour))
	var gkb, vkb [grantKeyLen]byte
	gk := bytes.Clone(grantKey(&gkb, &owner, &recipient, &g.PathHash))
	// Dave never got a grant; moving Bob's value under Dave's key must not
	// give him one.
	vk := bytes.Clone(grantKey(&vkb, &owner, &victim, &g.PathHash))
	vtk := bytes.Clone(tombKey(&vkb, &owner, &victim, &g.PathHash))
	otherPath := ph("/b")
	ok := bytes.Clone(grantKey(&vkb, &owner, &recipient, &otherPath))
	mk := makeKeys(&owner, &recipient, &g.PathHash).m()
	otherMk := makeKeys(&owner, &recipient, &otherPath).m()

	tests := []struct {
		name  string
		move  func(t *testing.T, dir string)
		check func(t *testing.T, s *Store)
	}{
		{name: "to another recipient", move: func(t *testing.T, dir string) {
			rawUpdate(t, dir, dbGrants, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
				v, err := txn.Get(dbi, gk)
				if err != nil {
					return err
				}
				return txn.Put(dbi, vk, bytes.Clone(v), 0)
			})
		}, check: func(t *testing.T, s *Store) {
			_, err := s.lookup(&owner, &victim, [][32]byte{g.PathHash}, t0)
			wantErr(t, err, ErrCorrupt)
		}},
		{name: "to another path", move: func(t *testing.T, dir string) {
			rawUpdate(t, dir, dbGrants, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
				v, err := txn.Get(dbi, gk)
				if err != nil {
					return err
				}
				return txn.Put(dbi, ok, bytes.Clone(v), 0)
			})
		}, check: func(t *testing.T, s *Store) {
			_, err := s.lookup(&owner, &recipient, [][32]byte{otherPath}, t0)
			wantErr(t, err, ErrCorrupt)
		}},
		{name: "grant into tombstones", move: func(t *testing.T, dir string) {
			var v []byte
			rawUpdate(t, dir, dbGrants, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
				x, err := txn.Get(dbi, gk)
				v = bytes.Clone(x)
				return err
			})
			rawUpdate(t, dir, dbTombs, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
				return txn.Put(dbi, vtk, v, 0)
			})
		}, check: func(t *testing.T, s *Store) {
			_, err := s.getTombstone(&owner, &victim, &g.PathHash)
			wantErr(t, err, ErrCorrupt)
		}},
		{name: "sequence mark to another path", move: func(t *testing.T, dir string) {
			rawUpdate(t, dir, dbSeqs, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
				v, err := txn.Get(dbi, mk)
				if err != nil {
					return err
				}
				return txn.Put(dbi, otherMk, bytes.Clone(v), 0)
			})
		}, check: func(t *testing.T, s *Store) {
			err := s.putGrant(mkGrant(owner, recipient, "/b", 1, t0.Add(time.Hour)), t0)
			wantErr(t, err, ErrCorrupt)
		}},
		{name: "verifier removed", move: func(t *testing.T, dir string) {
			rawUpdate(t, dir, dbMeta, func(txn *lmdb.Txn, dbi lmdb.DBI) error {
				return txn.Del(dbi, metaVerifier, nil)
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Key: RawKey(testKey(7))})
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, g, t0)
			s.Close()
			tt.move(t, dir)
			s, err = Open(dir, Options{Key: RawKey(testKey(7))})
			if tt.check == nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tt.check(t, s)
		})
	}
}
