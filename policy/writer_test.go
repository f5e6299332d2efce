package policy

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func testCert(t testing.TB, f *fixture, prefix string) *WriterCert {
	t.Helper()
	p := MustNormalizePath(prefix)
	c := &WriterCert{Writer: IdentityOf(f.other).IdentityKey, IssuedAt: uint64(testNow.Unix()), Prefix: p}
	for i, q := range p.Prefixes() {
		c.Levels = append(c.Levels, WriterLevel{Epoch: uint32(i), DelegatingKey: PublicKeyOf(DelegatingKey(f.owner, q, uint32(i)).PublicKey())})
	}
	if err := c.Sign(IdentitySigner(f.owner)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWriterCert(t *testing.T) {
	f := newFixture(t)
	c := testCert(t, f, "/docs/sensors")
	owner := IdentityOf(f.owner).IdentityKey
	if err := VerifyWriterCert(c, owner); err != nil {
		t.Fatal(err)
	}
	b := c.Bytes()
	if len(b) != writerBodyBase+len("/docs/sensors")+3*writerLevel+SignatureSize {
		t.Fatalf("certificate of %d bytes", len(b))
	}
	back, err := ParseWriterCert(b)
	if err != nil || !bytes.Equal(back.Bytes(), b) || back.ID() != c.ID() {
		t.Fatalf("round trip: %v", err)
	}
	s := c.String()
	if !strings.HasPrefix(s, "kadrewriter1") {
		t.Fatalf("string form %q", s[:20])
	}
	fromString, err := ParseWriterCertString(" " + s[:40] + "\n" + s[40:] + " ")
	if err != nil || fromString.ID() != c.ID() {
		t.Fatalf("string round trip (with whitespace): %v", err)
	}
	// One wrong character is caught by the checksum.
	typo := []byte(s)
	typo[30] = map[bool]byte{true: 'q', false: 'p'}[typo[30] != 'q']
	if _, err := ParseWriterCertString(string(typo)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a typo: %v", err)
	}
	if !c.Covers(MustNormalizePath("/docs/sensors/7/a.csv")) || !c.Covers(MustNormalizePath("/docs/sensors")) ||
		c.Covers(MustNormalizePath("/docs/sensorsx")) || c.Covers(MustNormalizePath("/docs")) {
		t.Fatal("Covers")
	}
	if err := VerifyWriterCert(c, IdentityOf(f.recipient).IdentityKey); !errors.Is(err, ErrMismatch) {
		t.Fatalf("another owner: %v", err)
	}
	// Signed by someone else.
	forged := *c
	forged.Owner = PublicKey{}
	if err := forged.Sign(IdentitySigner(f.recipient)); err != nil {
		t.Fatal(err)
	}
	forged.Owner = owner
	if err := VerifyWriterCert(&forged, owner); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
	// Every byte changed is refused by the parser or the signature.
	for i := range b {
		x := bytes.Clone(b)
		x[i] ^= 0x04
		if p, err := ParseWriterCert(x); err == nil && VerifyWriterCert(p, owner) == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
	// Levels must be one per prefix level.
	bad := *c
	bad.Levels = bad.Levels[:2]
	if err := bad.Sign(IdentitySigner(f.owner)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too few levels: %v", err)
	}
	if _, err := ParseWriterCert(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

// Page 0 of a map lists the revoked writers, sorted; other pages none.
func TestRevokedWriters(t *testing.T) {
	f := newFixture(t)
	nodes := testNodes(t, 5)
	m := testMap(t, f, nodes)
	ws := []PublicKey{IdentityOf(f.other).IdentityKey, IdentityOf(f.recipient).IdentityKey}
	slices.SortFunc(ws, func(a, b PublicKey) int { return bytes.Compare(a[:], b[:]) })
	m.RevokedWriters = ws
	if err := m.Sign(IdentitySigner(f.owner)); err != nil {
		t.Fatal(err)
	}
	back, err := ParseHolderMap(m.Bytes())
	if err != nil || !back.WriterRevoked(ws[0]) || !back.WriterRevoked(ws[1]) || back.WriterRevoked(IdentityOf(f.owner).IdentityKey) {
		t.Fatalf("round trip: %v", err)
	}
	if len(m.Bytes()) != MapHeaderSize+m.Entries[0].size()+2*PublicKeySize+SignatureSize {
		t.Fatalf("page of %d bytes", len(m.Bytes()))
	}
	m.RevokedWriters = []PublicKey{ws[1], ws[0]}
	if err := m.Sign(IdentitySigner(f.owner)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unsorted: %v", err)
	}
	m.RevokedWriters, m.Pages, m.Page = ws, 2, 1
	if err := m.Sign(IdentitySigner(f.owner)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("on page 1: %v", err)
	}
	// Room for them on page 0.
	entries := make([]MapEntry, 60)
	for i := range entries {
		entries[i] = m.Entries[0]
		entries[i].PathHash[0] = byte(i)
	}
	with, err := PageEntries(entries, MaxRevokedWriters)
	if err != nil {
		t.Fatal(err)
	}
	without, _ := PageEntries(entries, 0)
	if len(with[0]) >= len(without[0]) {
		t.Fatalf("page 0 holds %d entries with 64 revoked writers, %d without", len(with[0]), len(without[0]))
	}
	if _, err := PageEntries(entries, MaxRevokedWriters+1); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too many revoked writers: %v", err)
	}
}

func FuzzParseWriterCert(f *testing.F) {
	fx := newFixture(f)
	f.Add(testCert(f, fx, "/docs").Bytes())
	f.Add(testCert(f, fx, "/").Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseWriterCert(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatal("a parsed certificate does not re-encode to its bytes")
		}
	})
}

// Sign makes no kadre record: their methods check their fields.
func TestSignRefusesRecordLabels(t *testing.T) {
	f := newFixture(t)
	for _, l := range []string{LabelGrant, LabelRevocation, LabelReceipt, LabelNodeInfo, LabelHolderMap, LabelAdmission, LabelHandoff, LabelWriter, "kadre/x", "other/x\x00"} {
		if _, err := Sign(IdentitySigner(f.owner), l, []byte("body")); err == nil {
			t.Errorf("Sign with label %q succeeded", l)
		}
	}
	sig, err := Sign(IdentitySigner(f.owner), "kadre/file-header/v2\x00", []byte("body"))
	if err != nil || Verify(IdentityOf(f.owner).IdentityKey, "kadre/file-header/v2\x00", []byte("body"), sig) != nil {
		t.Fatalf("a format's own label: %v", err)
	}
}
