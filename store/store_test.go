package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/seal"
)

func TestPutGrantRules(t *testing.T) {
	owner, recipient := pk(alice), pk(bob)
	day := t0.Add(24 * time.Hour)
	tests := []struct {
		name  string
		setup func(t *testing.T, s *Store)
		put   entry
		want  error
	}{
		{name: "first grant", put: mkGrant(owner, recipient, "/a", 1, day)},
		{name: "newer replaces", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, recipient, "/a", 1, day), t0)
		}, put: mkGrant(owner, recipient, "/a", 2, day)},
		{name: "identical retry is a no-op", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, recipient, "/a", 3, day), t0)
		}, put: mkGrant(owner, recipient, "/a", 3, day)},
		{name: "same seq other record", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, recipient, "/a", 3, day), t0)
		}, put: func() entry { g := mkGrant(owner, recipient, "/a", 3, day); g.ID[0] ^= 1; return g }(), want: ErrStale},
		{name: "older seq", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, recipient, "/a", 3, day), t0)
		}, put: mkGrant(owner, recipient, "/a", 2, day), want: ErrStale},
		{name: "older seq other recipient same path hash", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, pk(dave), "/a", 3, day), t0)
		}, put: mkGrant(owner, recipient, "/a", 2, day), want: ErrStale},
		{name: "other owner has own sequence", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(pk(carol), recipient, "/a", 9, day), t0)
		}, put: mkGrant(owner, recipient, "/a", 1, day)},
		{name: "replay of revoked grant", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, recipient, "/a", 1, day), t0)
			mustRevoke(t, s, owner, recipient, "/a", 2, t0)
		}, put: mkGrant(owner, recipient, "/a", 1, day), want: ErrRevoked},
		{name: "grant signed before revocation arrives after it", setup: func(t *testing.T, s *Store) {
			mustRevoke(t, s, owner, recipient, "/a", 5, t0)
		}, put: mkGrant(owner, recipient, "/a", 4, day), want: ErrRevoked},
		{name: "grant with the tombstone's seq", setup: func(t *testing.T, s *Store) {
			mustRevoke(t, s, owner, recipient, "/a", 5, t0)
		}, put: mkGrant(owner, recipient, "/a", 5, day), want: ErrRevoked},
		{name: "newer grant after revocation", setup: func(t *testing.T, s *Store) {
			mustPut(t, s, mkGrant(owner, recipient, "/a", 1, day), t0)
			mustRevoke(t, s, owner, recipient, "/a", 2, t0)
		}, put: mkGrant(owner, recipient, "/a", 3, day)},
		{name: "expired", put: mkGrant(owner, recipient, "/a", 1, t0), want: ErrExpired},
		{name: "seq zero", put: mkGrant(owner, recipient, "/a", 0, day), want: ErrInvalid},
		{name: "empty record", put: func() entry { g := mkGrant(owner, recipient, "/a", 1, day); g.Record = nil; return g }(), want: ErrInvalid},
		{name: "oversized record", put: func() entry {
			g := mkGrant(owner, recipient, "/a", 1, day)
			g.Record = make([]byte, MaxRecordSize+1)
			return g
		}(), want: ErrInvalid},
		{name: "largest record", put: func() entry {
			g := mkGrant(owner, recipient, "/a", 1, day)
			g.Record = bytes.Repeat([]byte{1}, MaxRecordSize)
			return g
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, t.TempDir(), Options{})
			if tt.setup != nil {
				tt.setup(t, s)
			}
			err := s.putGrant(tt.put, t0)
			if tt.want != nil {
				wantErr(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatalf("PutGrant: %v", err)
			}
			got, err := s.get(&tt.put.Owner, &tt.put.Recipient, &tt.put.PathHash)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.Seq != tt.put.Seq || got.ID != tt.put.ID || !bytes.Equal(got.Record, tt.put.Record) ||
				got.Expires.Unix() != tt.put.Expires.Unix() {
				t.Fatalf("Get = %+v, want %+v", got, tt.put)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	g := mkGrant(owner, recipient, "/a", 3, t0.Add(time.Hour))
	mustPut(t, s, g, t0)

	_, err := s.revoke(revocation{Owner: owner, Recipient: recipient, PathHash: g.PathHash, Seq: 3, At: t0})
	wantErr(t, err, ErrStale)

	ts := mustRevoke(t, s, owner, recipient, "/a", 4, t0)
	if !ts.Deleted || ts.DeletedSeq != 3 || ts.DeletedID != g.ID || ts.Seq != 4 || !ts.RevokedAt.Equal(t0) {
		t.Fatalf("tombstone = %+v", ts)
	}
	if _, err := s.get(&owner, &recipient, &g.PathHash); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("Get after revoke: %v", err)
	}
	// A retried revocation gets the same receipt back.
	again := mustRevoke(t, s, owner, recipient, "/a", 4, t0.Add(time.Minute))
	if again != ts {
		t.Fatalf("retry = %+v, want %+v", again, ts)
	}
	stored, err := s.getTombstone(&owner, &recipient, &g.PathHash)
	if err != nil || stored != ts {
		t.Fatalf("GetTombstone = %+v, %v", stored, err)
	}
	// Revoking what was never stored still records the revocation.
	none := mustRevoke(t, s, owner, recipient, "/never", 1, t0)
	if none.Deleted {
		t.Fatalf("deleted something that was never stored: %+v", none)
	}
	_, err = s.revoke(revocation{Owner: owner, Recipient: recipient, PathHash: g.PathHash, Seq: 0, At: t0})
	wantErr(t, err, ErrInvalid)
}

func TestOpenLockedAndClose(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := Open(dir, Options{Key: RawKey(testKey(7))}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	owner, recipient := pk(alice), pk(bob)
	if err := s.putGrant(mkGrant(owner, recipient, "/", 1, t0.Add(time.Hour)), t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutGrant after Close: %v", err)
	}
	if _, err := s.lookup(&owner, &recipient, pathHashes("/"), t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lookup after Close: %v", err)
	}
	// The lock is released: the directory opens again.
	openTest(t, dir, Options{})
}

func TestKeySources(t *testing.T) {
	owner, recipient := pk(alice), pk(bob)
	g := mkGrant(owner, recipient, "/", 1, t0.Add(time.Hour))
	tests := []struct {
		name  string
		good  func(dir string) KeySource
		wrong func(dir string) KeySource
	}{
		{name: "key file", good: func(string) KeySource { return KeyFile("") },
			wrong: func(dir string) KeySource {
				p := filepath.Join(dir, "other.key")
				os.WriteFile(p, testKey(9), 0o600)
				return KeyFile(p)
			}},
		{name: "passphrase", good: func(string) KeySource {
			return PassphraseWithParams([]byte("correct horse battery staple"), seal.Params{Time: 1, MemoryKiB: 1024, Threads: 1})
		}, wrong: func(string) KeySource { return Passphrase([]byte("correct horse battery stapler")) }},
		{name: "raw key", good: func(string) KeySource { return RawKey(testKey(1)) },
			wrong: func(string) KeySource { return RawKey(testKey(2)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{Key: tt.good(dir)})
			if err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, g, t0)
			s.Close()
			before, err := os.ReadFile(filepath.Join(dir, "data.mdb"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Open(dir, Options{Key: tt.wrong(dir)}); !errors.Is(err, ErrWrongKey) {
				t.Fatalf("Open with wrong key: %v, want ErrWrongKey", err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, "data.mdb"))
			if !bytes.Equal(before, after) {
				t.Fatal("a failed Open with a wrong key modified data.mdb")
			}
			s = openTest(t, dir, Options{Key: tt.good(dir)})
			if _, err := s.lookup(&owner, &recipient, pathHashes("/"), t0); err != nil {
				t.Fatalf("Lookup after reopen: %v", err)
			}
		})
	}
}

func TestKeyFileCreated0600(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Fatalf("key file mode %v size %d", fi.Mode().Perm(), fi.Size())
	}
	// A lost key file is an error, not a new key over old data.
	os.Remove(filepath.Join(dir, KeyFileName))
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open without the key file of an existing store succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFileName)); err == nil {
		t.Fatal("Open created a new key file for an existing store")
	}
	if _, err := Open(t.TempDir(), Options{Key: RawKey([]byte("short"))}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short raw key: %v", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if err := s.update(func(txn *lmdb.Txn) error { return s.putSchema(txn, SchemaVersion+1) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, Options{Key: RawKey(testKey(7))}); !errors.Is(err, ErrSchema) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchema", err)
	}
}

func TestMapGrowth(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{InitialMapSize: 1 << 20})
	owner, recipient := pk(alice), pk(bob)
	const n = 600 // ~2.5 MB of values: the 1 MiB map must grow twice
	for i := range n {
		g := mkGrant(owner, recipient, "/f"+itoa(i), 1, t0.Add(time.Hour))
		g.Record = bytes.Repeat([]byte{byte(i)}, MaxRecordSize)
		mustPut(t, s, g, t0)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Grants != n || st.MapSize < 4<<20 {
		t.Fatalf("stats = %+v", st)
	}
	s.Close()
	s = openTest(t, dir, Options{InitialMapSize: 1 << 20})
	if st, _ := s.Stats(); st.Grants != n {
		t.Fatalf("after reopen: %+v", st)
	}
}

func TestMapMaxSize(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{InitialMapSize: 1 << 20, MaxMapSize: 1 << 20})
	owner, recipient := pk(alice), pk(bob)
	var err error
	for i := 0; i < 5000 && err == nil; i++ {
		err = s.putGrant(mkGrant(owner, recipient, itoa(i), 1, t0.Add(time.Hour)), t0)
	}
	if err == nil {
		t.Fatal("writes beyond MaxMapSize succeeded")
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestPrune(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Retention: 10 * 24 * time.Hour})
	owner, recipient := pk(alice), pk(bob)
	short := mkGrant(owner, recipient, "/short", 1, t0.Add(time.Hour))
	long := mkGrant(owner, recipient, "/long", 1, t0.Add(30*24*time.Hour))
	revoked := mkGrant(owner, recipient, "/revoked", 1, t0.Add(20*24*time.Hour))
	for _, g := range []entry{short, long, revoked} {
		mustPut(t, s, g, t0)
	}
	// Replaced grant: the old deadline entry must not prune the new one.
	replaced := mkGrant(owner, recipient, "/replaced", 1, t0.Add(2*time.Hour))
	mustPut(t, s, replaced, t0)
	mustPut(t, s, mkGrant(owner, recipient, "/replaced", 2, t0.Add(40*24*time.Hour)), t0)
	mustRevoke(t, s, owner, recipient, "/revoked", 2, t0)

	st, err := s.Prune(t0.Add(3 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st != (PruneStats{Grants: 1}) {
		t.Fatalf("prune at +3h = %+v, want the short grant only", st)
	}
	if _, err := s.get(&owner, &recipient, &short.PathHash); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("expired grant still there: %v", err)
	}
	if _, err := s.get(&owner, &recipient, &replaced.PathHash); err != nil {
		t.Fatalf("replacement grant pruned: %v", err)
	}
	// The short grant's mark outlives it: a replay is still refused as stale
	// even though a fresh expiry would make it look valid.
	replay := short
	replay.Expires = t0.Add(5 * 24 * time.Hour)
	wantErr(t, s.putGrant(replay, t0.Add(4*time.Hour)), ErrStale)

	// At +21 days: the revoked grant's tombstone must still be kept (its
	// grant would have lived until +20d, retention is 10d from +0).
	if _, err := s.Prune(t0.Add(15 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.getTombstone(&owner, &recipient, &revoked.PathHash); err != nil {
		t.Fatalf("tombstone pruned before the grant it refuses expired: %v", err)
	}
	st, err = s.Prune(t0.Add(21 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Tombstones != 1 {
		t.Fatalf("prune at +21d = %+v, want the tombstone", st)
	}
	st, err = s.Prune(t0.Add(100 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stats, _ := s.Stats()
	if stats.Grants != 0 || stats.Tombstones != 0 || stats.Seqs != 0 {
		t.Fatalf("after everything expired: %+v (last prune %+v)", stats, st)
	}
	var n int
	s.view(func(txn *lmdb.Txn) error {
		x, _ := txn.Stat(s.deadlines)
		n = int(x.Entries)
		return nil
	})
	if n != 0 {
		t.Fatalf("%d deadline entries left", n)
	}
}

func TestRevocationKeepUntil(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Retention: time.Hour})
	owner, recipient := pk(alice), pk(bob)
	_, err := s.revoke(revocation{Owner: owner, Recipient: recipient, PathHash: ph("/a"), Seq: 7, At: t0, KeepUntil: t0.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s.Prune(t0.Add(47 * time.Hour))
	// A grant signed before the revocation, never seen here, is refused
	// for as long as the owner asked.
	wantErr(t, s.putGrant(mkGrant(owner, recipient, "/a", 6, t0.Add(60*time.Hour)), t0.Add(47*time.Hour)), ErrRevoked)
	s.Prune(t0.Add(49 * time.Hour))
	if _, err := s.getTombstone(&owner, &recipient, &[32]byte{}); !errors.Is(err, ErrNotGranted) {
		t.Fatal(err)
	}
	if st, _ := s.Stats(); st.Tombstones != 0 || st.Seqs != 0 {
		t.Fatalf("after KeepUntil: %+v", st)
	}
}
