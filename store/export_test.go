package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func exportKey(b byte) *[KeySize]byte {
	var k [KeySize]byte
	copy(k[:], testKey(b))
	return &k
}

func TestExportImportRoundTrip(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	var grants []entry
	for i := range 40 {
		g := mkGrant(owner, recipient, "/f"+itoa(i), uint64(i+1), t0.Add(time.Duration(i+1)*time.Hour))
		mustPut(t, src, g, t0)
		grants = append(grants, g)
	}
	mustRevoke(t, src, owner, recipient, "/f3", 100, t0)
	mustRevoke(t, src, owner, recipient, "/never", 5, t0)

	var buf bytes.Buffer
	st, err := src.Export(&buf, exportKey(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != (ExportStats{Grants: 39, Tombstones: 2, Seqs: 41}) {
		t.Fatalf("export stats = %+v", st)
	}
	dst := openTest(t, t.TempDir(), Options{Key: RawKey(testKey(8))})
	ist, err := dst.Import(bytes.NewReader(buf.Bytes()), exportKey(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	// Marks raised by grants and tombstones of the same stream are no-ops.
	if ist.Grants != 39 || ist.Tombstones != 2 || ist.Seqs != 41 {
		t.Fatalf("import stats = %+v", ist)
	}
	for i, g := range grants {
		got, err := dst.lookup(&owner, &recipient, [][32]byte{g.PathHash}, t0)
		if i == 3 {
			wantErr(t, err, ErrRevoked)
			continue
		}
		if err != nil || got.Grant.ID != g.ID || !bytes.Equal(got.Grant.Record, g.Record) {
			t.Fatalf("grant %d after import: %v", i, err)
		}
	}
	// The imported marks still refuse replays.
	stale := grants[5]
	stale.ID[0] ^= 1
	wantErr(t, dst.putGrant(stale, t0), ErrStale)
	wantErr(t, dst.putGrant(grants[3], t0), ErrRevoked)
	// Importing the same stream again changes nothing.
	if _, err := dst.Import(bytes.NewReader(buf.Bytes()), exportKey(1), t0); err != nil {
		t.Fatal(err)
	}
	a, _ := src.Stats()
	b, _ := dst.Stats()
	if a.Grants != b.Grants || a.Tombstones != b.Tombstones || a.Seqs != b.Seqs {
		t.Fatalf("stats differ: %+v vs %+v", a, b)
	}
}

func TestExportOneGrantHandOff(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	keep := mkGrant(owner, recipient, "/handed", 2, t0.Add(time.Hour))
	mustPut(t, src, keep, t0)
	mustPut(t, src, mkGrant(owner, recipient, "/other", 1, t0.Add(time.Hour)), t0)
	mustPut(t, src, mkGrant(pk(carol), recipient, "/handed", 1, t0.Add(time.Hour)), t0)

	var buf bytes.Buffer
	st, err := src.Export(&buf, exportKey(2), func(o *[33]byte, h *[32]byte) bool {
		return *o == owner && *h == keep.PathHash
	})
	if err != nil || st != (ExportStats{Grants: 1, Seqs: 1}) {
		t.Fatalf("Export = %+v, %v", st, err)
	}

	// The receiving node already saw a newer revocation: the hand-off must
	// not resurrect the grant.
	dst := openTest(t, t.TempDir(), Options{Key: RawKey(testKey(8))})
	mustRevoke(t, dst, owner, recipient, "/handed", 3, t0)
	ist, err := dst.Import(bytes.NewReader(buf.Bytes()), exportKey(2), t0)
	if err != nil || ist.Skipped != 2 {
		t.Fatalf("Import over a newer revocation = %+v, %v", ist, err)
	}
	_, err = dst.lookup(&owner, &recipient, [][32]byte{keep.PathHash}, t0)
	wantErr(t, err, ErrRevoked)

	// An expired grant is not imported either.
	late := openTest(t, t.TempDir(), Options{Key: RawKey(testKey(9))})
	ist, err = late.Import(bytes.NewReader(buf.Bytes()), exportKey(2), t0.Add(2*time.Hour))
	if err != nil || ist.Skipped != 1 {
		t.Fatalf("Import after expiry = %+v, %v", ist, err)
	}
}

// TestImportRejectsTampering flips every bit of a small export, truncates it
// at every length, appends to it and uses the wrong key: each must fail, and
// since the export fits in one batch, nothing may be applied.
func TestImportRejectsTampering(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	mustPut(t, src, mkGrant(owner, recipient, "/a", 1, t0.Add(time.Hour)), t0)
	mustRevoke(t, src, owner, recipient, "/b", 1, t0)
	var buf bytes.Buffer
	if _, err := src.Export(&buf, exportKey(3), nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	dst := openTest(t, t.TempDir(), Options{Key: RawKey(testKey(8))})
	check := func(what string, data []byte, key *[KeySize]byte) {
		t.Helper()
		_, err := dst.Import(bytes.NewReader(data), key, t0)
		if !errors.Is(err, ErrBadExport) {
			t.Fatalf("%s: Import error %v, want ErrBadExport", what, err)
		}
	}
	for i := range len(good) * 8 {
		bad := bytes.Clone(good)
		bad[i/8] ^= 1 << (i % 8)
		check("bit "+itoa(i), bad, exportKey(3))
	}
	for n := range len(good) {
		check("truncated to "+itoa(n), good[:n], exportKey(3))
	}
	check("trailing byte", append(bytes.Clone(good), 0), exportKey(3))
	check("wrong key", good, exportKey(4))
	if st, _ := dst.Stats(); st.Grants != 0 || st.Tombstones != 0 || st.Seqs != 0 {
		t.Fatalf("a rejected import applied records: %+v", st)
	}
	if _, err := dst.Import(bytes.NewReader(good), exportKey(3), t0); err != nil {
		t.Fatalf("untampered import: %v", err)
	}
}

// TestImportBatches imports an export larger than one batch, whole and
// truncated: a truncated stream fails, and what was applied is a prefix of
// whole batches of authentic records.
func TestImportBatches(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	owner, recipient := pk(alice), pk(bob)
	gs := make([]entry, 2500)
	for i := range gs {
		gs[i] = mkGrant(owner, recipient, "/many/"+itoa(i), 1, t0.Add(time.Hour))
	}
	bulkPut(t, src, gs, t0)
	var buf bytes.Buffer
	if _, err := src.Export(&buf, exportKey(1), nil); err != nil {
		t.Fatal(err)
	}
	full := openTest(t, t.TempDir(), Options{})
	st, err := full.Import(bytes.NewReader(buf.Bytes()), exportKey(1), t0)
	if err != nil || st.Grants != 2500 || st.Seqs != 2500 || st.Skipped != 2500 {
		// Every mark equals the one its grant raised: skipped as stale.
		t.Fatalf("Import = %+v, %v", st, err)
	}
	cut := openTest(t, t.TempDir(), Options{})
	// Cut in the middle of the 1500th grant frame.
	frame := 5 + grantKeyLen + grantHeaderLen + 700 + 16
	_, err = cut.Import(bytes.NewReader(buf.Bytes()[:exportHeaderLen+1499*frame+frame/2]), exportKey(1), t0)
	wantErr(t, err, ErrBadExport)
	got, _ := cut.Stats()
	if got.Grants != importBatch {
		t.Fatalf("truncated import applied %d grants, want the first batch (%d)", got.Grants, importBatch)
	}
}
