package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/policy"
)

// testPage is page i of n of a pair's map at seq; the store keeps what the
// service verified, so no signature is needed here.
func testPage(seq uint64, i, n uint8, expiry time.Time) *policy.HolderMap {
	m := &policy.HolderMap{SigAlg: policy.SignatureECDSASecp256k1, Owner: policy.PublicKey(pk(alice)), Recipient: policy.PublicKey(pk(bob)),
		Sequence: seq, IssuedAt: uint64(t0.Unix()), Page: i, Pages: n}
	for j := range m.Points {
		m.Points[j][0], m.Points[j][1] = 0xaa, byte(j)
	}
	m.Entries = []policy.MapEntry{{PathHash: policy.PathHash(ph("/a")), Sequence: seq, Expiry: uint64(expiry.Unix()), Threshold: 1, Shares: 1,
		Holders: []policy.MapHolder{{Node: policy.PublicKey(pk(carol)), GrantID: policy.RecordID{byte(seq), i}}}}}
	return m
}

func testLink(at int64, id byte) *policy.HandoffLink {
	l := &policy.HandoffLink{SigAlg: policy.SignatureECDSASecp256k1, Owner: policy.PublicKey(pk(alice)), Recipient: policy.PublicKey(pk(bob)),
		GrantID: policy.RecordID{id}, From: policy.PublicKey(pk(carol)), To: policy.PublicKey(pk(alice)), At: uint64(at)}
	l.SigFrom[0], l.SigTo[0] = id, id
	return l
}

var aliceKey = policy.PublicKey(pk(alice))

// A map signed by another owner that names the same points is kept beside
// the owner's, not in its place: knowing a pair's points is not enough to
// hide its map.
func TestMapPointsPerOwner(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	mine := testPage(2, 0, 1, t0.Add(time.Hour))
	theirs := testPage(9, 0, 1, t0.Add(time.Hour))
	theirs.Owner = policy.PublicKey(pk(carol))
	for _, m := range []*policy.HolderMap{mine, theirs} {
		if err := s.PutMapPage(m, m.Bytes(), t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		owner policy.PublicKey
		want  *policy.HolderMap
	}{{aliceKey, mine}, {policy.PublicKey(pk(carol)), theirs}} {
		got, err := s.MapPage(mine.Points[0], c.owner, 0)
		if err != nil || !bytes.Equal(got, c.want.Bytes()) {
			t.Fatalf("map of %x at the shared point: %v", c.owner[:4], err)
		}
	}
}

func TestHolderMaps(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	day := t0.Add(24 * time.Hour)
	p0 := testPage(2, 0, 2, day)
	point := p0.Points[1]
	if got, err := s.MapPage(point, aliceKey, 0); got != nil || err != nil {
		t.Fatalf("empty store: %v", err)
	}
	if err := s.PutMapPage(p0, p0.Bytes(), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMapPage(p0, p0.Bytes(), t0); err != nil {
		t.Fatalf("the same page again: %v", err)
	}
	other := testPage(2, 0, 2, day)
	other.IssuedAt++
	if err := s.PutMapPage(other, other.Bytes(), t0); !errors.Is(err, ErrStale) {
		t.Fatalf("another page 0 of the same sequence: %v", err)
	}
	if got, err := s.MapPage(point, aliceKey, 0); err != nil || !bytes.Equal(got, p0.Bytes()) {
		t.Fatalf("MapPage = %v", err)
	}
	if got, err := s.MapPage(point, aliceKey, 1); got != nil || err != nil {
		t.Fatalf("missing page 1: %v", err)
	}
	p1 := testPage(2, 1, 2, day)
	if err := s.PutMapPage(p1, p1.Bytes(), t0); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*policy.HandoffLink{testLink(5, 1), testLink(6, 2), testLink(5, 1)} {
		if err := s.PutLink(l); err != nil {
			t.Fatal(err)
		}
	}
	if links, err := s.Links(point, aliceKey); err != nil || len(links) != 2 {
		t.Fatalf("Links = %d, %v", len(links), err)
	}
	// An older sequence is refused; a newer one replaces the pages and
	// keeps the links.
	old := testPage(1, 0, 1, day)
	if err := s.PutMapPage(old, old.Bytes(), t0); !errors.Is(err, ErrStale) {
		t.Fatalf("older map: %v", err)
	}
	newer := testPage(3, 0, 1, day)
	if err := s.PutMapPage(newer, newer.Bytes(), t0); err != nil {
		t.Fatal(err)
	}
	pages, links, err := s.Map(newer.Owner, newer.Recipient)
	if err != nil || len(pages) != 1 || !bytes.Equal(pages[0], newer.Bytes()) || len(links) != 2 {
		t.Fatalf("Map = %d pages, %d links, %v", len(pages), len(links), err)
	}
	// At most MaxFragmentLinks links of one fragment, the oldest dropped
	// first, whatever the other fragments' links: one holder's many links
	// push out only its own.
	for i := range 3 * MaxFragmentLinks {
		if err := s.PutLink(testLink(int64(1000+i), 0xee)); err != nil {
			t.Fatal(err)
		}
	}
	links, _ = s.Links(point, aliceKey)
	if len(links) != 2+MaxFragmentLinks {
		t.Fatalf("%d links kept, want the 2 others and %d of the flooding fragment", len(links), MaxFragmentLinks)
	}
	for _, l := range links {
		if pl, err := policy.ParseHandoffLink(l); err == nil && pl.GrantID[0] == 0xee && pl.At < 1000+2*MaxFragmentLinks {
			t.Fatalf("an old link (at %d) was kept over newer ones", pl.At)
		}
	}
	// At most MaxLinks in all, the oldest dropped first.
	for i := range MaxLinks + 5 {
		l := testLink(int64(2000+i), byte(i))
		l.GrantID[1] = byte(i >> 8)
		if err := s.PutLink(l); err != nil {
			t.Fatal(err)
		}
	}
	links, _ = s.Links(point, aliceKey)
	if len(links) != MaxLinks {
		t.Fatalf("%d links kept", len(links))
	}
	for _, l := range links {
		if pl, err := policy.ParseHandoffLink(l); err == nil && pl.At < 2005 {
			t.Fatalf("an old link (at %d) was kept over newer ones", pl.At)
		}
	}
	// Survives a restart.
	s.Close()
	s = openTest(t, dir, Options{})
	if got, err := s.MapPage(point, aliceKey, 0); err != nil || !bytes.Equal(got, newer.Bytes()) {
		t.Fatalf("after restart: %v", err)
	}
	// Pruned once its grants expired and the retention passed.
	if st, err := s.Prune(day.Add(366 * 24 * time.Hour)); err != nil || st.Maps != 1 {
		t.Fatalf("Prune = %+v, %v", st, err)
	}
	if got, err := s.MapPage(point, aliceKey, 0); got != nil || err != nil {
		t.Fatalf("after prune: %v", err)
	}
	if err := s.PutLink(testLink(1, 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("link without a map: %v", err)
	}
}

func TestRevocationsAndMarks(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, s, mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour)), t0)
	rec := []byte("owner-signed revocation bytes")
	if _, err := s.revoke(revocation{Owner: owner, Recipient: recipient, PathHash: ph("/a"), Seq: 2, At: t0, Record: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.revoke(revocation{Owner: owner, Recipient: pk(carol), PathHash: ph("/b"), Seq: 2, At: t0, Record: []byte("other recipient")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Revocations(policy.PublicKey(owner), policy.PublicKey(recipient))
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], rec) {
		t.Fatalf("Revocations = %q, %v", got, err)
	}
	// A raised mark refuses older grants; it never goes down.
	if err := s.RaiseMark(policy.PublicKey(owner), policy.PathHash(ph("/c")), 9, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseMark(policy.PublicKey(owner), policy.PathHash(ph("/c")), 3, t0); err != nil {
		t.Fatal(err)
	}
	if seq, err := s.Mark(policy.PublicKey(owner), policy.PathHash(ph("/c"))); err != nil || seq != 9 {
		t.Fatalf("Mark = %d, %v", seq, err)
	}
	if err := s.putGrant(mkGrant(owner, recipient, "/c", 5, t0.Add(time.Hour)), t0); !errors.Is(err, ErrStale) {
		t.Fatalf("grant below a raised mark: %v", err)
	}
}

// A version 1 store (no maps) opens, migrates to version 2 and keeps its
// grants and tombstones.
func TestMigrateFromVersion1(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, s, mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour)), t0)
	// A version 1 tombstone value, and the schema set back to 1.
	v1 := storedTomb{seq: 3, revokedAt: t0.Unix()}
	enc := v1.encode()[:tombValueLen]
	enc[0] = valueVersion
	tk := tombKey(new([grantKeyLen]byte), &owner, &recipient, ptr(ph("/b")))
	if err := s.update(func(txn *lmdb.Txn) error {
		if err := txn.Put(s.tombs, tk, s.seal.seal(dbTombs, tk, enc), 0); err != nil {
			return err
		}
		return s.putSchema(txn, 1)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, Options{})
	if _, err := s.get(&owner, &recipient, ptr(ph("/a"))); err != nil {
		t.Fatalf("grant after migration: %v", err)
	}
	if ts, err := s.getTombstone(&owner, &recipient, ptr(ph("/b"))); err != nil || ts.Seq != 3 {
		t.Fatalf("version 1 tombstone after migration: %+v, %v", ts, err)
	}
	var version []byte
	s.view(func(txn *lmdb.Txn) error {
		v, err := txn.Get(s.meta, metaSchema)
		if err == nil {
			version, err = s.seal.open(dbMeta, metaSchema, v)
		}
		return err
	})
	if len(version) != 8 || version[7] != SchemaVersion {
		t.Fatalf("schema after migration: %x", version)
	}
}

func ptr[T any](v T) *T { return &v }

// An export carries the holder maps; an import keeps the newer.
func TestExportMaps(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	p := testPage(4, 0, 1, t0.Add(time.Hour))
	if err := src.PutMapPage(p, p.Bytes(), t0); err != nil {
		t.Fatal(err)
	}
	if err := src.PutLink(testLink(7, 3)); err != nil {
		t.Fatal(err)
	}
	key := [KeySize]byte{9}
	var buf bytes.Buffer
	st, err := src.Export(&buf, &key, nil)
	if err != nil || st.Maps != 1 {
		t.Fatalf("Export = %+v, %v", st, err)
	}
	dst := openTest(t, t.TempDir(), Options{})
	newer := testPage(5, 0, 1, t0.Add(time.Hour))
	if _, err := dst.Import(bytes.NewReader(buf.Bytes()), &key, t0); err != nil {
		t.Fatal(err)
	}
	if got, err := dst.MapPage(p.Points[2], aliceKey, 0); err != nil || !bytes.Equal(got, p.Bytes()) {
		t.Fatalf("imported map: %v", err)
	}
	if links, err := dst.Links(p.Points[0], aliceKey); err != nil || len(links) != 1 {
		t.Fatalf("imported links: %d, %v", len(links), err)
	}
	if err := dst.PutMapPage(newer, newer.Bytes(), t0); err != nil {
		t.Fatal(err)
	}
	st, err = dst.Import(bytes.NewReader(buf.Bytes()), &key, t0)
	if err != nil || st.Skipped != 1 {
		t.Fatalf("re-import over a newer map: %+v, %v", st, err)
	}
	if got, _ := dst.MapPage(p.Points[0], aliceKey, 0); !bytes.Equal(got, newer.Bytes()) {
		t.Fatal("an import replaced a newer map")
	}
}
