package policy

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kadre/kadre/rekey"
)

// testMap is a 3-of-5 grant's holder map: fragment i on nodes[i].
func testMap(t testing.TB, f *fixture, nodes []*rekey.Keyring) *HolderMap {
	t.Helper()
	g := f.grants[0]
	e := MapEntry{PathHash: g.PathHash, Sequence: g.Sequence, Expiry: g.Expiry, Threshold: g.Threshold, Shares: g.Shares,
		DelegatingKey: g.DelegatingKey, VerifyingKey: g.VerifyingKey}
	for i, gi := range f.grants {
		e.Holders = append(e.Holders, MapHolder{Node: IdentityOf(nodes[i]).IdentityKey, GrantID: gi.ID()})
	}
	pair, err := OwnerPairKey(f.owner, IdentityOf(f.recipient).IdentityKey)
	if err != nil {
		t.Fatal(err)
	}
	m := &HolderMap{Recipient: IdentityOf(f.recipient).IdentityKey, Points: pair.Points(), Sequence: 3,
		IssuedAt: uint64(testNow.Unix()), Pages: 1, Entries: []MapEntry{e}}
	if err := m.Sign(IdentitySigner(f.owner)); err != nil {
		t.Fatal(err)
	}
	return m
}

func testNodes(t testing.TB, n int) []*rekey.Keyring {
	t.Helper()
	var out []*rekey.Keyring
	for i := range n {
		k, _ := testIdentity(t, byte(40+i))
		out = append(out, k)
	}
	return out
}

func link(t testing.TB, m *HolderMap, e *MapEntry, grant RecordID, from, to *rekey.Keyring) *HandoffLink {
	t.Helper()
	l := &HandoffLink{Owner: m.Owner, Recipient: m.Recipient, GrantID: grant, PathHash: e.PathHash,
		To: IdentityOf(to).IdentityKey, At: uint64(testNow.Unix())}
	if err := l.SignFrom(IdentitySigner(from)); err != nil {
		t.Fatal(err)
	}
	if err := l.SignTo(IdentitySigner(to)); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestHolderMapRoundTrip(t *testing.T) {
	f := newFixture(t)
	m := testMap(t, f, testNodes(t, 5))
	b := m.Bytes()
	if len(b) != MapHeaderSize+m.Entries[0].size()+SignatureSize {
		t.Fatalf("page of %d bytes", len(b))
	}
	got, err := ParseHolderMap(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), b) || got.ID() != m.ID() {
		t.Fatal("holder map does not round-trip")
	}
	if err := VerifyHolderMap(got, IdentityOf(f.owner).IdentityKey, IdentityOf(f.recipient).IdentityKey); err != nil {
		t.Fatal(err)
	}
	if err := VerifyHolderMap(got, IdentityOf(f.owner).IdentityKey, IdentityOf(f.other).IdentityKey); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another pair's map: %v", err)
	}
	if got.Entry(f.grants[0].PathHash) == nil || got.Entry(PathHash{}) != nil || !got.HasPoint(m.Points[2]) || got.HasPoint(Point{}) {
		t.Fatal("lookups")
	}
	c := *got
	c.Sequence++
	if err := c.VerifySignature(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("edited map: %v", err)
	}
	// Every one-byte change is refused by the parser or the signature.
	for i := range b {
		x := bytes.Clone(b)
		x[i] ^= 0x08
		p, err := ParseHolderMap(x)
		if err == nil {
			err = VerifyHolderMap(p, m.Owner, m.Recipient)
		}
		if err == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
}

func TestHolderMapRefusals(t *testing.T) {
	f := newFixture(t)
	nodes := testNodes(t, 5)
	for _, tc := range []struct {
		name string
		edit func(m *HolderMap)
		want error
	}{
		{"page beyond pages", func(m *HolderMap) { m.Page, m.Pages = 2, 2 }, ErrMalformed},
		{"too many pages", func(m *HolderMap) { m.Pages = MaxMapPages + 1 }, ErrMalformed},
		{"sequence 0", func(m *HolderMap) { m.Sequence = 0 }, ErrMalformed},
		{"path hash twice", func(m *HolderMap) { m.Entries = append(m.Entries, m.Entries[0]) }, ErrMalformed},
		{"node twice", func(m *HolderMap) { m.Entries[0].Holders[1].Node = m.Entries[0].Holders[0].Node }, ErrMalformed},
		{"fragment twice", func(m *HolderMap) { m.Entries[0].Holders[1].GrantID = m.Entries[0].Holders[0].GrantID }, ErrMalformed},
		{"more holders than shares", func(m *HolderMap) { m.Entries[0].Shares = 4 }, ErrMalformed},
		{"no holder", func(m *HolderMap) { m.Entries[0].Holders = nil }, ErrMalformed},
		{"m > n", func(m *HolderMap) { m.Entries[0].Threshold = 6 }, ErrBadThreshold},
		{"holder key off curve", func(m *HolderMap) { m.Entries[0].Holders[2].Node = PublicKey{2} }, ErrMalformed},
		{"page too large", func(m *HolderMap) {
			for i := range 30 {
				e := m.Entries[0]
				e.PathHash[0] = byte(i + 1)
				m.Entries = append(m.Entries, e)
			}
		}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMap(t, f, nodes)
			m.Entries[0].Holders = append([]MapHolder(nil), m.Entries[0].Holders...)
			tc.edit(m)
			if err := m.Sign(IdentitySigner(f.owner)); !errors.Is(err, tc.want) {
				t.Fatalf("Sign = %v, want %v", err, tc.want)
			}
			// The parser refuses the same bytes.
			m.SigAlg = SignatureECDSASecp256k1
			if _, err := ParseHolderMap(m.Bytes()); err == nil {
				t.Fatal("ParseHolderMap accepted it")
			}
		})
	}
}

func TestPageEntries(t *testing.T) {
	f := newFixture(t)
	e := testMap(t, f, testNodes(t, 5)).Entries[0]
	var entries []MapEntry
	for i := range 100 {
		x := e
		x.PathHash[0], x.PathHash[1] = byte(i), byte(i>>8)
		entries = append(entries, x)
	}
	pages, err := PageEntries(entries, 0)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, p := range pages {
		m := &HolderMap{Recipient: IdentityOf(f.recipient).IdentityKey, Sequence: 1, IssuedAt: 1, Page: uint8(i), Pages: uint8(len(pages)), Entries: p}
		if err := m.Sign(IdentitySigner(f.owner)); err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		total += len(p)
	}
	if total != 100 || len(pages) < 2 {
		t.Fatalf("%d entries in %d pages", total, len(pages))
	}
	for i := 100; i < MaxMapPages*30; i++ {
		x := e
		x.PathHash[0], x.PathHash[1] = byte(i), byte(i>>8)
		entries = append(entries, x)
	}
	if _, err := PageEntries(entries, 0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d entries: %v", len(entries), err)
	}
}

func TestCurrentHolders(t *testing.T) {
	f := newFixture(t)
	nodes := testNodes(t, 9) // 0..4 the map's holders, 5..8 others
	m := testMap(t, f, nodes)
	e := &m.Entries[0]
	g0, g1 := f.grants[0].ID(), f.grants[1].ID()
	key := func(i int) PublicKey { return IdentityOf(nodes[i]).IdentityKey }

	if cur := CurrentHolders(m, e, nil); len(cur) != 5 || cur[g0][0] != key(0) {
		t.Fatalf("no links: %v", cur)
	}
	// 0 → 5 → 6: the fragment is on 6, whatever the order of the links.
	a, b := link(t, m, e, g0, nodes[0], nodes[5]), link(t, m, e, g0, nodes[5], nodes[6])
	for _, ls := range [][]*HandoffLink{{a, b}, {b, a}} {
		if cur := CurrentHolders(m, e, ls); len(cur[g0]) != 1 || cur[g0][0] != key(6) {
			t.Fatalf("two hops: %v", cur[g0])
		}
	}
	// Links that do not count.
	notHolder := link(t, m, e, g0, nodes[7], nodes[8])    // 7 never held g0
	twoFragments := link(t, m, e, g1, nodes[1], nodes[2]) // 2 holds another fragment of the grant
	wrongGrant := link(t, m, e, RecordID{9}, nodes[2], nodes[8])
	forged := link(t, m, e, g1, nodes[1], nodes[7])
	forged.SigFrom = a.SigFrom
	otherPair := link(t, m, e, g1, nodes[1], nodes[8])
	otherPair.Recipient = IdentityOf(f.other).IdentityKey
	cur := CurrentHolders(m, e, []*HandoffLink{notHolder, twoFragments, wrongGrant, forged, otherPair})
	for i, h := range e.Holders {
		if len(cur[h.GrantID]) != 1 || cur[h.GrantID][0] != key(i) {
			t.Fatalf("fragment %d moved by a link that should not count: %v", i, cur[h.GrantID])
		}
	}
	// A holder that hands one fragment to two nodes leaves both current.
	fork := CurrentHolders(m, e, []*HandoffLink{link(t, m, e, g1, nodes[1], nodes[7]), link(t, m, e, g1, nodes[1], nodes[8])})
	if len(fork[g1]) != 2 {
		t.Fatalf("fork: %v", fork[g1])
	}
}

func TestHandoffLink(t *testing.T) {
	f := newFixture(t)
	nodes := testNodes(t, 6)
	m := testMap(t, f, nodes)
	l := link(t, m, &m.Entries[0], f.grants[0].ID(), nodes[0], nodes[5])
	b := l.Bytes()
	if len(b) != HandoffSize {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := ParseHandoffLink(b)
	if err != nil || !bytes.Equal(got.Bytes(), b) || got.VerifySignatures() != nil {
		t.Fatalf("round trip: %v", err)
	}
	if err := got.SignTo(IdentitySigner(nodes[4])); !errors.Is(err, ErrMismatch) {
		t.Fatalf("countersigned by another node: %v", err)
	}
	self := &HandoffLink{Owner: m.Owner, Recipient: m.Recipient, GrantID: f.grants[0].ID(), To: IdentityOf(nodes[0]).IdentityKey, At: 1}
	if err := self.SignFrom(IdentitySigner(nodes[0])); !errors.Is(err, ErrMalformed) {
		t.Fatalf("hand-off to itself: %v", err)
	}
	for i := range b {
		x := bytes.Clone(b)
		x[i] ^= 0x01
		if p, err := ParseHandoffLink(x); err == nil && p.VerifySignatures() == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
}

func TestAdmissionList(t *testing.T) {
	f := newFixture(t)
	nodes := testNodes(t, 4)
	a := &AdmissionList{IssuedAt: uint64(testNow.Unix()), Expiry: uint64(testNow.Add(time.Hour).Unix())}
	for _, n := range []int{3, 1, 2, 1} {
		a.Nodes = append(a.Nodes, IdentityOf(nodes[n]).IdentityKey)
	}
	if err := a.Sign(IdentitySigner(f.other)); err != nil {
		t.Fatal(err)
	}
	if len(a.Nodes) != 3 {
		t.Fatalf("%d nodes after sorting and dropping repeats", len(a.Nodes))
	}
	got, err := ParseAdmissionList(a.Bytes())
	if err != nil || !bytes.Equal(got.Bytes(), a.Bytes()) {
		t.Fatalf("round trip: %v", err)
	}
	op := IdentityOf(f.other).IdentityKey
	if err := VerifyAdmissionList(got, op, testNow); err != nil {
		t.Fatal(err)
	}
	if !got.Admits(IdentityOf(nodes[2]).IdentityKey) || got.Admits(IdentityOf(nodes[0]).IdentityKey) {
		t.Fatal("Admits")
	}
	if err := VerifyAdmissionList(got, IdentityOf(f.owner).IdentityKey, testNow); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another operator: %v", err)
	}
	if err := VerifyAdmissionList(got, op, testNow.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired list: %v", err)
	}
	b := a.Bytes()
	for i := range b {
		x := bytes.Clone(b)
		x[i] ^= 0x02
		if p, err := ParseAdmissionList(x); err == nil && VerifyAdmissionList(p, op, testNow) == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
}

func FuzzParseHolderMap(f *testing.F) {
	fx := newFixture(f)
	f.Add(testMap(f, fx, testNodes(f, 5)).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseHolderMap(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("a parsed holder map does not re-encode to its bytes")
		}
	})
}

func FuzzParseHandoffLink(f *testing.F) {
	fx := newFixture(f)
	nodes := testNodes(f, 6)
	m := testMap(f, fx, nodes)
	f.Add(link(f, m, &m.Entries[0], fx.grants[0].ID(), nodes[0], nodes[5]).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseHandoffLink(b)
		if err != nil {
			return
		}
		if !bytes.Equal(l.Bytes(), b) {
			t.Fatal("a parsed link does not re-encode to its bytes")
		}
	})
}

func FuzzParseAdmissionList(f *testing.F) {
	fx := newFixture(f)
	a := &AdmissionList{IssuedAt: 1, Expiry: 2, Nodes: []PublicKey{IdentityOf(fx.owner).IdentityKey}}
	if err := a.Sign(IdentitySigner(fx.other)); err != nil {
		f.Fatal(err)
	}
	f.Add(a.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseAdmissionList(b)
		if err != nil {
			return
		}
		if !bytes.Equal(l.Bytes(), b) {
			t.Fatal("a parsed list does not re-encode to its bytes")
		}
	})
}
