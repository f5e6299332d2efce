package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"
)

// t0 is the tests' fixed "now"; time always comes from the caller.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func testKey(b byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Key == nil {
		opts.Key = RawKey(testKey(7))
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pk returns a fake compressed public key; the store treats it as opaque.
func pk(b byte) [33]byte {
	var k [33]byte
	k[0] = 2
	for i := 1; i < len(k); i++ {
		k[i] = b
	}
	return k
}

// ph returns a path hash that does not depend on owner or recipient, so the
// tests prove the store itself separates them.
func ph(path string) [32]byte { return sha256.Sum256([]byte("path:" + path)) }

func pathHashes(paths ...string) [][32]byte {
	out := make([][32]byte, len(paths))
	for i, p := range paths {
		out[i] = ph(p)
	}
	return out
}

// recordFor makes a deterministic ~700-byte record, like a real signed
// grant with one kfrag.
func recordFor(owner, recipient [33]byte, h [32]byte, seq uint64) []byte {
	rec := make([]byte, 0, 704)
	seed := sha256.New()
	seed.Write(owner[:])
	seed.Write(recipient[:])
	seed.Write(h[:])
	seed.Write(binary.BigEndian.AppendUint64(nil, seq))
	block := seed.Sum(nil)
	for len(rec) < 700 {
		block2 := sha256.Sum256(block)
		block = block2[:]
		rec = append(rec, block...)
	}
	return rec[:700]
}

func mkGrant(owner, recipient [33]byte, path string, seq uint64, expires time.Time) entry {
	h := ph(path)
	rec := recordFor(owner, recipient, h, seq)
	return entry{Owner: owner, Recipient: recipient, PathHash: h, ID: sha256.Sum256(rec), Seq: seq, Expires: expires, Record: rec}
}

func mustPut(t testing.TB, s *Store, g entry, now time.Time) {
	t.Helper()
	if err := s.putGrant(g, now); err != nil {
		t.Fatalf("PutGrant(seq %d): %v", g.Seq, err)
	}
}

func mustRevoke(t testing.TB, s *Store, owner, recipient [33]byte, path string, seq uint64, at time.Time) tombstone {
	t.Helper()
	ts, err := s.revoke(revocation{Owner: owner, Recipient: recipient, PathHash: ph(path), Seq: seq, At: at})
	if err != nil {
		t.Fatalf("Revoke(seq %d): %v", seq, err)
	}
	return ts
}

// rawUpdate opens the closed store's LMDB environment directly, the way an
// attacker with disk access would, and runs fn on named database db.
func rawUpdate(t testing.TB, dir, db string, fn func(txn *lmdb.Txn, dbi lmdb.DBI) error) {
	t.Helper()
	env, err := lmdb.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if err := env.SetMaxDBs(12); err != nil {
		t.Fatal(err)
	}
	if err := env.Open(dir, 0, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := env.Update(func(txn *lmdb.Txn) error {
		dbi, err := txn.OpenDBI(db, 0)
		if err != nil {
			return err
		}
		return fn(txn, dbi)
	}); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// bulkPut stores grants in one write transaction with PutGrant's rules, for
// tests that need many grants quickly (each PutGrant is an fsync).
func bulkPut(t testing.TB, s *Store, gs []entry, now time.Time) {
	t.Helper()
	err := s.update(func(txn *lmdb.Txn) error {
		for i := range gs {
			g := &gs[i]
			k := makeKeys(&g.Owner, &g.Recipient, &g.PathHash)
			sg := storedGrant{seq: g.Seq, expires: g.Expires.Unix(), id: g.ID, record: g.Record}
			if err := s.putGrantTxn(txn, k, &sg, s.seal.seal(dbGrants, k.g(), sg.encode()), now, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
