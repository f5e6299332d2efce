package client

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func testRecord(i int) *GrantRecord {
	return &GrantRecord{Recipient: fmt.Sprintf("recipient-%d", i%3), Path: fmt.Sprintf("/p/%d", i), Threshold: 3, Shares: 5,
		Sequence: uint64(1000 + i), Created: time.Unix(int64(1e9+i), 0).UTC(), Expires: time.Unix(int64(2e9+i), 0).UTC(),
		Holders: []HolderRecord{{Fragment: 0, Peer: "peer", GrantID: "id", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Receipt: "r"}}}
}

// onDisk is what a new process reads from path.
func onDisk(t *testing.T, path string) *ledgerDoc {
	t.Helper()
	doc, err := (&ledger{path: path}).read()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// sameDoc compares two ledgers as their JSON (nil and empty alike).
func sameDoc(t *testing.T, what string, got, want *ledgerDoc) {
	t.Helper()
	norm := func(d *ledgerDoc) string {
		c := d.clone()
		c.Journal = 0
		b, _ := json.Marshal(c)
		return strings.ReplaceAll(string(b), `"grants":[]`, `"grants":null`)
	}
	if g, w := norm(got), norm(want); g != w {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func TestLedgerJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), GrantsFile)
	l := &ledger{path: path}
	steps := []func(doc *ledgerDoc){
		func(doc *ledgerDoc) { doc.Grants = append(doc.Grants, testRecord(0)) },
		func(doc *ledgerDoc) { doc.Grants = append(doc.Grants, testRecord(1), testRecord(2)) },
		func(doc *ledgerDoc) {
			doc.Grants[1].Revocation = &RevocationInfo{Sequence: 7, Deleted: 5, Fragments: 5, Dead: true,
				Failed: map[string]string{"x": "y"}, Receipts: []string{"aa"}}
		},
		func(doc *ledgerDoc) { doc.Epochs = map[string]uint32{"/p": 1} },
		func(doc *ledgerDoc) { doc.Maps = map[string]uint64{"recipient-0": 3}; doc.Epochs["/q"] = 2 },
		func(doc *ledgerDoc) { doc.Maps["recipient-0"] = 4; doc.Maps["recipient-1"] = 1 },
		func(doc *ledgerDoc) {
			doc.Writers = append(doc.Writers, &WriterRecord{Writer: "w", Prefix: "/p", Cert: "c"})
		},
		func(doc *ledgerDoc) { doc.Writers[0].Superseded = true; doc.RevokedWriters = []string{"ab", "cd"} },
		func(doc *ledgerDoc) { doc.Grants[0].Holders[0].Addrs[0] = "/ip4/127.0.0.2/tcp/1" },
		func(doc *ledgerDoc) {}, // nothing: nothing written
	}
	var snap os.FileInfo
	var jsize int64
	for i, step := range steps {
		if err := l.update(func(doc *ledgerDoc) error { step(doc); return nil }); err != nil {
			t.Fatal(err)
		}
		mine, err := l.read()
		if err != nil {
			t.Fatal(err)
		}
		sameDoc(t, fmt.Sprintf("step %d, another process's read", i), onDisk(t, path), mine)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		js, err := os.Stat(path + JournalSuffix)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case i == 0:
			snap = st // the first change writes the snapshot
		case !os.SameFile(snap, st) || st.Size() != snap.Size():
			t.Fatalf("step %d rewrote the snapshot, not the journal", i)
		case i < len(steps)-1 && js.Size() <= jsize:
			t.Fatalf("step %d: the journal did not grow (%d bytes)", i, js.Size())
		case i == len(steps)-1 && js.Size() != jsize:
			t.Fatalf("a change that changed nothing wrote %d bytes", js.Size()-jsize)
		}
		jsize = js.Size()
	}
	doc := onDisk(t, path)
	if len(doc.Grants) != 3 || doc.Grants[1].Revocation == nil || !doc.Grants[1].Revocation.Dead || doc.Epochs["/q"] != 2 ||
		doc.Maps["recipient-0"] != 4 || !doc.Writers[0].Superseded || len(doc.RevokedWriters) != 2 ||
		doc.Grants[0].Holders[0].Addrs[0] != "/ip4/127.0.0.2/tcp/1" {
		t.Fatalf("replayed ledger lost a change: %+v", doc)
	}
}

func TestLedgerCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), GrantsFile)
	l := &ledger{path: path}
	var compactions int
	var snap os.FileInfo
	for i := range 2000 { // about 400 bytes a grant: past journalMinCompact, twice
		if err := l.update(func(doc *ledgerDoc) error { doc.Grants = append(doc.Grants, testRecord(i)); return nil }); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(path)
		if snap == nil || !os.SameFile(snap, st) {
			compactions++
			snap = st
		}
		js, _ := os.Stat(path + JournalSuffix)
		if js.Size() > max(st.Size(), journalMinCompact) {
			t.Fatalf("grant %d: journal %d bytes past the snapshot's %d", i, js.Size(), st.Size())
		}
	}
	if compactions < 3 || compactions > 6 {
		t.Fatalf("%d compactions for 2,000 grants", compactions)
	}
	doc := onDisk(t, path)
	if len(doc.Grants) != 2000 || doc.Grants[1999].Path != "/p/1999" {
		t.Fatalf("after compactions: %d grants", len(doc.Grants))
	}
	mine, _ := l.read()
	sameDoc(t, "after compactions", doc, mine)
}

func TestLedgerCrashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), GrantsFile)
	l := &ledger{path: path}
	add := func(l *ledger, i int) {
		t.Helper()
		if err := l.update(func(doc *ledgerDoc) error { doc.Grants = append(doc.Grants, testRecord(i)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	add(l, 0)
	add(l, 1)

	// A change torn by a crash: half a line, no newline.
	line, _ := json.Marshal(journalLine{Grants: []indexedGrant{{I: 2, Record: testRecord(2)}}})
	f, err := os.OpenFile(path+JournalSuffix, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(line[:len(line)/2])
	f.Close()
	if doc := onDisk(t, path); len(doc.Grants) != 2 {
		t.Fatalf("a torn change was applied: %d grants", len(doc.Grants))
	}
	other := &ledger{path: path}
	add(other, 3) // cuts the torn line off
	doc := onDisk(t, path)
	if len(doc.Grants) != 3 || doc.Grants[2].Path != "/p/3" {
		t.Fatalf("after a torn change: %d grants, last %s", len(doc.Grants), doc.Grants[len(doc.Grants)-1].Path)
	}
	add(l, 4) // l sees other's change first
	if doc := onDisk(t, path); len(doc.Grants) != 4 || doc.Grants[3].Path != "/p/4" {
		t.Fatalf("two processes: %d grants", len(doc.Grants))
	}

	// A compaction that stopped between the snapshot and the journal:
	// the snapshot of the next generation, the journal of this one.
	cur := onDisk(t, path)
	cur.Grants = cur.Grants[:1]
	cur.Journal = l.mem.Journal + 1
	b, _ := json.Marshal(cur)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if doc := onDisk(t, path); len(doc.Grants) != 1 {
		t.Fatalf("an older generation's journal was applied: %d grants", len(doc.Grants))
	}
	add(l, 5)
	if doc := onDisk(t, path); len(doc.Grants) != 2 || doc.Grants[1].Path != "/p/5" {
		t.Fatalf("after an interrupted compaction: %d grants", len(doc.Grants))
	}

	// A damaged whole line is an error, not silence.
	f, _ = os.OpenFile(path+JournalSuffix, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("{not json\n")
	f.Close()
	if _, err := (&ledger{path: path}).read(); err == nil || !strings.Contains(err.Error(), "grants journal") {
		t.Fatalf("a damaged journal line: %v", err)
	}
}

func TestLedgerVersion2(t *testing.T) {
	path := filepath.Join(t.TempDir(), GrantsFile)
	v2 := `{"version":2,"grants":[{"recipient":"r","path":"/a","m":1,"n":1,"sequence":5}],"epochs":{"/a":3}}`
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := onDisk(t, path)
	if len(doc.Grants) != 1 || doc.Epochs["/a"] != 3 {
		t.Fatalf("version 2 ledger read as %+v", doc)
	}
	l := &ledger{path: path}
	if err := l.update(func(doc *ledgerDoc) error { doc.Grants = append(doc.Grants, testRecord(1)); return nil }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var head struct{ Version int }
	json.Unmarshal(b, &head)
	if doc := onDisk(t, path); head.Version != ledgerVersion || len(doc.Grants) != 2 || doc.Epochs["/a"] != 3 {
		t.Fatalf("upgraded ledger: version %d, %d grants", head.Version, len(doc.Grants))
	}
	os.WriteFile(path, []byte(`{"version":1,"grants":[]}`), 0o600)
	if _, err := (&ledger{path: path}).read(); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("version 1: %v", err)
	}
}

// Several processes (here ledgers of their own) granting at once lose
// nothing.
func TestLedgerConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), GrantsFile)
	const writers, each = 4, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &ledger{path: path}
			for i := range each {
				if err := l.update(func(doc *ledgerDoc) error {
					doc.Grants = append(doc.Grants, testRecord(w*each+i))
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	doc := onDisk(t, path)
	seen := map[string]bool{}
	for _, g := range doc.Grants {
		seen[g.Path] = true
	}
	if len(doc.Grants) != writers*each || len(seen) != writers*each {
		t.Fatalf("%d grants recorded (%d distinct), want %d", len(doc.Grants), len(seen), writers*each)
	}
}

// A read's copy shares nothing with the ledger's own.
func TestLedgerCloneIsDeep(t *testing.T) {
	doc := &ledgerDoc{Version: ledgerVersion, Grants: []*GrantRecord{testRecord(0)}}
	doc.Grants[0].Revocation = &RevocationInfo{Failed: map[string]string{"a": "b"}, Receipts: []string{"r"}}
	doc.Epochs, doc.Maps = map[string]uint32{"/": 1}, map[string]uint64{"r": 1}
	doc.Writers, doc.RevokedWriters = []*WriterRecord{{Writer: "w"}}, []string{"x"}
	before, _ := json.Marshal(doc)
	c := doc.clone()
	if !reflect.DeepEqual(c, doc) {
		t.Fatal("clone differs")
	}
	g := c.Grants[0]
	g.Path, g.Holders[0].Peer, g.Holders[0].Addrs[0] = "changed", "changed", "changed"
	g.Revocation.Failed["a"], g.Revocation.Receipts[0], g.Revocation.Dead = "changed", "changed", true
	c.Epochs["/"], c.Maps["r"], c.Writers[0].Writer, c.RevokedWriters[0] = 9, 9, "changed", "changed"
	if after, _ := json.Marshal(doc); string(after) != string(before) {
		t.Fatalf("changing a clone changed the original:\n%s\n%s", before, after)
	}
}

// BenchmarkLedgerGrant is one grant's record added to a ledger that holds
// 10,000: what the ledger adds to every grant of a busy owner.
func BenchmarkLedgerGrant(b *testing.B) {
	path := filepath.Join(b.TempDir(), GrantsFile)
	l := &ledger{path: path}
	l.update(func(doc *ledgerDoc) error {
		for i := range 10_000 {
			doc.Grants = append(doc.Grants, benchRecord(i))
		}
		return nil
	})
	b.ResetTimer()
	for i := range b.N {
		if err := l.update(func(doc *ledgerDoc) error { doc.Grants = append(doc.Grants, benchRecord(i)); return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRecord is a grant record of the size a 3-of-5 grant's is (about
// 4.8 KB in grants.json): five holders with two addresses and a receipt.
func benchRecord(i int) *GrantRecord {
	g := testRecord(i)
	g.PathHash, g.DelegatingKey, g.VerifyingKey = strings.Repeat("a", 64), strings.Repeat("b", 66), strings.Repeat("c", 66)
	g.Holders = nil
	for f := range 5 {
		g.Holders = append(g.Holders, HolderRecord{Fragment: f, Peer: "16Uiu2HAm" + strings.Repeat("x", 44), GrantID: strings.Repeat("d", 64),
			Addrs: []string{"/ip4/203.0.113.7/tcp/4001", "/ip4/203.0.113.7/udp/4001/quic-v1"}, Receipt: strings.Repeat("e", 620)})
	}
	return g
}

// Changing any one field of a record, however deep, makes it unequal,
// and every field is reached: a field added to GrantRecord without equal
// and clone learning of it fails here.
func TestLedgerEqualSeesEveryField(t *testing.T) {
	full := testRecord(0)
	full.Epoch, full.PathHash, full.DelegatingKey, full.VerifyingKey = 1, "ph", "dk", "vk"
	full.Revocation = &RevocationInfo{Sequence: 1, At: time.Unix(5, 0), Deleted: 1, Fragments: 1, Acknowledged: 1,
		Failed: map[string]string{"a": "b"}, Dead: false, Receipts: []string{"r"}}
	var leaves []string
	var walk func(v reflect.Value, name string, mutate func())
	walk = func(v reflect.Value, name string, mutate func()) {
		switch v.Kind() {
		case reflect.Pointer:
			walk(v.Elem(), name, mutate)
		case reflect.Struct:
			if v.Type() == reflect.TypeOf(time.Time{}) {
				leaves = append(leaves, name)
				mutate()
				return
			}
			for i := range v.NumField() {
				f := v.Field(i)
				fname := name + "." + v.Type().Field(i).Name
				walk(f, fname, func() {
					c := full.clone()
					setLeaf(t, reflect.ValueOf(c).Elem(), strings.Split(fname, ".")[1:])
					if c.equal(full) || full.equal(c) {
						t.Errorf("a change of %s is not seen", fname)
					}
					if !full.equal(full.clone()) {
						t.Errorf("a clone differs")
					}
				})
			}
		case reflect.Slice, reflect.Map:
			if v.Len() == 0 {
				t.Fatalf("%s is empty: fill it", name)
			}
			leaves = append(leaves, name)
			mutate()
			if v.Kind() == reflect.Slice && v.Index(0).Kind() == reflect.Struct {
				for i := range v.Index(0).NumField() {
					fname := name + "." + v.Index(0).Type().Field(i).Name
					leaves = append(leaves, fname)
					c := full.clone()
					setLeaf(t, reflect.ValueOf(c).Elem(), strings.Split(fname, ".")[1:])
					if c.equal(full) {
						t.Errorf("a change of %s is not seen", fname)
					}
				}
			}
		default:
			leaves = append(leaves, name)
			mutate()
		}
	}
	walk(reflect.ValueOf(full), "GrantRecord", func() {})
	if len(leaves) < 25 {
		t.Fatalf("walked only %d fields: %v", len(leaves), leaves)
	}
}

// setLeaf changes the field at path in v (through pointers, and a slice's
// first element).
func setLeaf(t *testing.T, v reflect.Value, path []string) {
	t.Helper()
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() == reflect.Slice && len(path) > 0 {
		setLeaf(t, v.Index(0), path)
		return
	}
	if len(path) > 0 {
		setLeaf(t, v.FieldByName(path[0]), path[1:])
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint32, reflect.Uint64, reflect.Uint8:
		v.SetUint(v.Uint() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Index(0).Set(reflect.Zero(v.Type().Elem()))
		if v.Index(0).Kind() == reflect.String {
			v.Index(0).SetString("changed")
		}
	case reflect.Map:
		v.SetMapIndex(reflect.ValueOf("new"), reflect.ValueOf("value"))
	case reflect.Struct: // time.Time
		v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Second)))
	default:
		t.Fatalf("cannot change a %s", v.Kind())
	}
}
