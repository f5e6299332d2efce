package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bmatsuo/lmdb-go/lmdb"

	"github.com/kadre/kadre/internal/quota"
	"github.com/kadre/kadre/policy"
)

func testLimits() quota.Limits {
	var l quota.Limits
	l[quota.Grants] = quota.Limit{All: 100, Owner: 5, Peer: 5, Group: 20, Reserve: 10, Floor: 3}
	l[quota.History] = quota.Limit{All: 400, Owner: 20, Peer: 20, Group: 80, Reserve: 40, Floor: 12}
	l[quota.Maps] = quota.Limit{All: 50, Owner: 4, Peer: 4, Group: 10, Reserve: 5, Floor: 2}
	return l
}

func quotaErr(t *testing.T, err error, account string) {
	t.Helper()
	var qe *quota.Error
	if !errors.As(err, &qe) || !errors.Is(err, quota.ErrQuota) || (account != "" && qe.Account != account) {
		t.Fatalf("error %v, want a quota refusal of %q", err, account)
	}
}

func ownerN(i int) [33]byte {
	k := pk(byte(i))
	k[1], k[2] = byte(i>>8), 0xee
	return k
}

// Grants charged to a sender are bounded per owner, per peer, per network
// group and in all, with the reserve kept for small groups; deletion of any
// kind releases what was charged, and local writes are never refused.
func TestQuotaGrants(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Limits: testLimits()})
	day := t0.Add(24 * time.Hour)
	g1 := &quota.Charge{Group: "192.0.2.0/24"}
	put := func(owner [33]byte, path string, c *quota.Charge) error {
		return s.putGrantAs(mkGrant(owner, pk(bob), path, 1, day), t0, c)
	}
	// One owner: 5.
	for i := range 5 {
		if err := put(ownerN(1), fmt.Sprintf("/o1/%d", i), g1); err != nil {
			t.Fatal(err)
		}
	}
	quotaErr(t, put(ownerN(1), "/o1/5", g1), "owner")
	// The same grant again is no new unit: accepted.
	if err := put(ownerN(1), "/o1/0", g1); err != nil {
		t.Fatalf("same grant again: %v", err)
	}
	// A relaying peer is bounded too.
	relay := &quota.Charge{Peer: policy.PublicKey(pk(0x77)), Group: "198.51.100.0/24"}
	for i := range 5 {
		if err := put(ownerN(100+i), "/r", relay); err != nil {
			t.Fatal(err)
		}
	}
	quotaErr(t, put(ownerN(110), "/r", relay), "peer")
	// The group: 20 (5 already from owner 1).
	n := 5
	for o := 2; n < 20; o++ {
		for i := 0; i < 5 && n < 20; i++ {
			if err := put(ownerN(o), fmt.Sprintf("/g/%d", i), g1); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	quotaErr(t, put(ownerN(50), "/g", g1), "network group 192.0.2.0/24")
	// Local writes (restore, import) are charged but never refused.
	if err := put(ownerN(1), "/local", nil); err != nil {
		t.Fatalf("local write: %v", err)
	}
	u, _ := s.UsageOf(policy.PublicKey(ownerN(1)), g1)
	if u.Owner[quota.Grants] != 6 || u.Group[quota.Grants] != 20 || u.Node[quota.Grants] != 26 {
		t.Fatalf("usage %+v", u)
	}
	// Fill the node outside its reserve (90) from other groups.
	for used, gi := 26, 0; used < 90; gi++ {
		c := &quota.Charge{Group: fmt.Sprintf("203.0.%d.0/24", gi)}
		for i := 0; i < 20 && used < 90; i++ {
			if err := put(ownerN(200+used), "/fill", c); err != nil {
				t.Fatalf("fill %d: %v", used, err)
			}
			used++
		}
	}
	// A group that holds 3 (the floor) or more is refused the reserve; a
	// new group gets up to the floor.
	big := &quota.Charge{Group: "203.0.3.0/24"} // holds 4
	quotaErr(t, put(ownerN(400), "/late", big), "node reserve")
	fresh := &quota.Charge{Group: "100.64.0.0/24"}
	free, err := s.Free(quota.Grants, policy.PublicKey(ownerN(401)), fresh)
	if err != nil || free != 3 {
		t.Fatalf("Free for a new group in the reserve = %d, %v; want 3", free, err)
	}
	if free, _ := s.Free(quota.Grants, policy.PublicKey(ownerN(401)), big); free != 0 {
		t.Fatalf("Free for a big group in the reserve = %d", free)
	}
	for i := range 3 {
		if err := put(ownerN(401+i), "/new", fresh); err != nil {
			t.Fatalf("new group in the reserve, grant %d: %v", i, err)
		}
	}
	quotaErr(t, put(ownerN(405), "/new", fresh), "node reserve")
	// Releases: revocation of a held grant, hand-off, pruning.
	if _, err := s.revokeAs(revocation{Owner: ownerN(1), Recipient: pk(bob), PathHash: ph("/o1/0"), Seq: 2, At: t0}, g1); err != nil {
		t.Fatalf("revoking a held grant: %v", err)
	}
	o1, r := ownerN(1), pk(bob)
	g := mkGrant(o1, r, "/o1/1", 1, day)
	if err := s.deleteGrant(&o1, &r, &g.PathHash, g.ID); err != nil {
		t.Fatal(err)
	}
	u, _ = s.UsageOf(policy.PublicKey(ownerN(1)), g1)
	if u.Owner[quota.Grants] != 4 || u.Group[quota.Grants] != 18 {
		t.Fatalf("after revoke and delete: %+v", u)
	}
	if _, err := s.Prune(day.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	u, _ = s.UsageOf(policy.PublicKey(ownerN(1)), g1)
	if u.Node[quota.Grants] != 0 || u.Owner[quota.Grants] != 0 || u.Group[quota.Grants] != 0 {
		t.Fatalf("after pruning every grant: %+v", u)
	}
	if u.Node[quota.History] == 0 {
		t.Fatal("marks are not counted")
	}
	// No account is left behind once nothing is held.
	s.view(func(txn *lmdb.Txn) error {
		cur, _ := txn.OpenCursor(s.usage)
		defer cur.Close()
		for k, _, err := cur.Get(nil, nil, lmdb.First); err == nil; k, _, err = cur.Get(nil, nil, lmdb.Next) {
			if k[0] == kindBytes[quota.Grants] {
				t.Errorf("grants account %q left at 0", k)
			}
		}
		return nil
	})
}

// Tombstones of grants the node does not hold, and the marks with them,
// are bounded; a revocation of a held grant is never refused; pruning the
// marks releases them.
func TestQuotaHistory(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Limits: testLimits(), Retention: time.Hour})
	g1 := &quota.Charge{Group: "192.0.2.0/24"}
	rev := func(owner [33]byte, path string, seq uint64, c *quota.Charge) error {
		_, err := s.revokeAs(revocation{Owner: owner, Recipient: pk(bob), PathHash: ph(path), Seq: seq, At: t0}, c)
		return err
	}
	// A not-held revocation is a tombstone and a mark: 2 units; the owner
	// may hold 20.
	for i := range 10 {
		if err := rev(ownerN(1), fmt.Sprintf("/t/%d", i), 1, g1); err != nil {
			t.Fatal(err)
		}
	}
	quotaErr(t, rev(ownerN(1), "/t/x", 1, g1), "owner")
	// The same revocation again (a retry) is no new unit.
	if err := rev(ownerN(1), "/t/0", 1, g1); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// The group's 80 fill from other owners.
	for o := 2; o <= 7; o++ {
		for i := range 10 {
			if err := rev(ownerN(o), fmt.Sprintf("/t/%d", i), 1, g1); err != nil && o < 5 {
				t.Fatal(err)
			}
		}
	}
	quotaErr(t, rev(ownerN(9), "/t/y", 1, g1), "network group 192.0.2.0/24")
	// A grant stored locally is revoked from the full group: accepted.
	if err := s.putGrant(mkGrant(ownerN(9), pk(bob), "/held", 1, t0.Add(time.Hour)), t0); err != nil {
		t.Fatal(err)
	}
	if err := rev(ownerN(9), "/held", 2, g1); err != nil {
		t.Fatalf("revocation of a held grant refused: %v", err)
	}
	// A grant that needs a new mark is refused while the group's history
	// is full.
	quotaErr(t, s.putGrantAs(mkGrant(ownerN(10), pk(bob), "/new", 1, t0.Add(time.Hour)), t0, g1), "network group 192.0.2.0/24")
	// Pruning the marks (retention 1 h) releases the tombstones and marks.
	if _, err := s.Prune(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	u, _ := s.UsageOf(policy.PublicKey(ownerN(1)), g1)
	if u.Node[quota.History] != 0 || u.Group[quota.History] != 0 {
		t.Fatalf("after pruning: %+v", u)
	}
	if err := rev(ownerN(1), "/t/x", 1, g1); err != nil {
		t.Fatalf("after pruning: %v", err)
	}
}

// Holder-map pages are charged per page; a newer sequence releases the
// older pages; its points replace the old ones.
func TestQuotaMaps(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Limits: testLimits()})
	g1 := &quota.Charge{Group: "192.0.2.0/24"}
	exp := t0.Add(time.Hour)
	for i := range uint8(4) {
		p := testPage(1, i, 8, exp)
		if err := s.PutMapPageAs(p, p.BodyBytes(), t0, g1); err != nil {
			t.Fatal(err)
		}
	}
	p := testPage(1, 4, 8, exp)
	quotaErr(t, s.PutMapPageAs(p, p.BodyBytes(), t0, g1), "owner")
	// The same page again: no new unit.
	p = testPage(1, 0, 8, exp)
	if err := s.PutMapPageAs(p, p.BodyBytes(), t0, g1); err != nil {
		t.Fatalf("same page again: %v", err)
	}
	// A newer sequence with other points: the 4 old pages are released.
	p = testPage(2, 0, 1, exp)
	p.Points[0][5] = 0x55
	if err := s.PutMapPageAs(p, p.BodyBytes(), t0, g1); err != nil {
		t.Fatal(err)
	}
	u, _ := s.UsageOf(policy.PublicKey(pk(alice)), g1)
	if u.Owner[quota.Maps] != 1 || u.Node[quota.Maps] != 1 {
		t.Fatalf("after a newer map: %+v", u)
	}
	old := testPage(1, 0, 8, exp).Points[0]
	if page, _ := s.MapPage(old, policy.PublicKey(pk(alice)), 0); page != nil {
		t.Fatal("a point of the older map still answers")
	}
	var points uint64
	s.view(func(txn *lmdb.Txn) error {
		st, _ := txn.Stat(s.points)
		points = st.Entries
		return nil
	})
	if points != policy.MapPoints {
		t.Fatalf("%d points kept, want %d", points, policy.MapPoints)
	}
	if _, err := s.Prune(t0.Add(400 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UsageOf(policy.PublicKey(pk(alice)), g1); u.Node[quota.Maps] != 0 {
		t.Fatalf("after pruning the map: %+v", u)
	}
}

// A schema 2 store is charged to its owners when it is opened.
func TestQuotaMigration(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	mustPut(t, s, mkGrant(pk(alice), pk(bob), "/a", 1, t0.Add(time.Hour)), t0)
	mustRevoke(t, s, pk(alice), pk(bob), "/b", 1, t0)
	// Back to schema 2: no charges, no counts.
	if err := s.update(func(txn *lmdb.Txn) error {
		if err := txn.Drop(s.usage, false); err != nil {
			return err
		}
		if err := txn.Drop(s.charges, false); err != nil {
			return err
		}
		return s.putSchema(txn, 2)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, Options{Limits: testLimits()})
	u, err := s.UsageOf(policy.PublicKey(pk(alice)), nil)
	if err != nil || u.Node[quota.Grants] != 1 || u.Owner[quota.Grants] != 1 || u.Node[quota.History] != 3 {
		t.Fatalf("after migration: %+v, %v", u, err)
	}
}

// An older data.mdb put back, or a missing counter file, is refused;
// accepted on purpose, the counter follows the store.
func TestRollback(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, s, mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour)), t0)
	s.Close()
	before, err := os.ReadFile(filepath.Join(dir, "data.mdb"))
	if err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	mustRevoke(t, s, owner, recipient, "/a", 2, t0)
	s.Close()
	// The thief's copy from before the revocation.
	if err := os.WriteFile(filepath.Join(dir, "data.mdb"), before, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Key: RawKey(testKey(7))}); !errors.Is(err, ErrRollback) {
		t.Fatalf("Open of a rolled-back store: %v", err)
	}
	counter, _ := os.ReadFile(filepath.Join(dir, CounterFileName))
	os.Remove(filepath.Join(dir, CounterFileName))
	if _, err := Open(dir, Options{Key: RawKey(testKey(7))}); !errors.Is(err, ErrRollback) {
		t.Fatalf("Open without the counter file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, CounterFileName), counter, 0o600)
	s = openTest(t, dir, Options{AcceptRollback: true})
	if _, err := s.get(&owner, &recipient, ptr(ph("/a"))); err != nil {
		t.Fatalf("the rolled-back grant: %v", err)
	}
	s.Close()
	s = openTest(t, dir, Options{})
	s.Close()
	// A counter on another medium: a rollback of the whole store
	// directory, counter and all, is caught.
	// (Moving the counter is moving its file.)
	elsewhere := filepath.Join(t.TempDir(), "kadre.generation")
	counter, _ = os.ReadFile(filepath.Join(dir, CounterFileName))
	os.WriteFile(elsewhere, counter, 0o600)
	s = openTest(t, dir, Options{CounterFile: elsewhere})
	s.Close()
	snapshot, _ := os.ReadFile(filepath.Join(dir, "data.mdb"))
	s = openTest(t, dir, Options{CounterFile: elsewhere})
	mustRevoke(t, s, owner, recipient, "/c", 3, t0)
	s.Close()
	os.WriteFile(filepath.Join(dir, "data.mdb"), snapshot, 0o600)
	if _, err := Open(dir, Options{Key: RawKey(testKey(7)), CounterFile: elsewhere}); !errors.Is(err, ErrRollback) {
		t.Fatalf("whole-directory rollback with the counter elsewhere: %v", err)
	}
	b, _ := os.ReadFile(elsewhere)
	if !bytes.HasPrefix(b, []byte(counterPrefix)) {
		t.Fatalf("counter file %q", b)
	}
}
