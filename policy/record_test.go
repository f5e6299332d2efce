package policy

import (
	"bytes"
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kadre/kadre/rekey"
)

// testNow is the clock of every test: 2026-11-22T00:00:00Z.
var testNow = time.Unix(1795305600, 0).UTC()

func testRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

type fixture struct {
	owner, recipient, other *rekey.Keyring
	prefix                  Path
	grants                  []*Grant // 3-of-5 for prefix, sequence 7
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{prefix: MustNormalizePath("/home/ubuntu")}
	f.owner, _ = testIdentity(t, 1)
	f.recipient, _ = testIdentity(t, 2)
	f.other, _ = testIdentity(t, 3)
	gs, err := NewGrantsWithRand(testRand(1), f.owner, GrantParams{
		Recipient: IdentityOf(f.recipient),
		Prefix:    f.prefix,
		Threshold: 3,
		Shares:    5,
		Sequence:  7,
		Expiry:    uint64(testNow.Add(24 * time.Hour).Unix()),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.grants = gs
	return f
}

func (f *fixture) revocation(t testing.TB, seq uint64) *Revocation {
	t.Helper()
	r := &Revocation{
		Recipient: f.grants[0].Recipient.IdentityKey,
		PathHash:  f.grants[0].PathHash,
		Sequence:  seq,
		IssuedAt:  uint64(testNow.Unix()),
	}
	if err := r.Sign(IdentitySigner(f.owner)); err != nil {
		t.Fatal(err)
	}
	return r
}

// signedReceipt signs a receipt; fragment is the grant ID it is about
// (zero for REVOKED_NOT_HELD).
func signedReceipt(t testing.TB, node *rekey.Keyring, kind ReceiptKind, subject, fragment RecordID, owner PublicKey, ph PathHash, seq uint64) *Receipt {
	t.Helper()
	rc := &Receipt{Kind: kind, Owner: owner, PathHash: ph, Sequence: seq, Subject: subject, Fragment: fragment, IssuedAt: uint64(testNow.Unix())}
	if err := rc.Sign(IdentitySigner(node)); err != nil {
		t.Fatal(err)
	}
	return rc
}

func testNodeInfo(t testing.TB, node *rekey.Keyring) *NodeInfo {
	t.Helper()
	ni := &NodeInfo{
		ProtocolVersion:  1,
		MaxGrantDuration: 90 * 24 * 3600,
		Capacity:         1000,
		FreeSlots:        999,
		IssuedAt:         uint64(testNow.Unix()),
		Algorithms:       []PREAlgorithm{PREUmbral},
		Software:         "kadre/0.1.0",
	}
	if err := ni.Sign(IdentitySigner(node)); err != nil {
		t.Fatal(err)
	}
	return ni
}

func TestGrantRoundTrip(t *testing.T) {
	f := newFixture(t)
	ids := map[RecordID]bool{}
	for _, g := range f.grants {
		b := g.Bytes()
		if len(b) != PublicGrantSize+2+rekey.KeyFragSize {
			t.Fatalf("grant is %d bytes", len(b))
		}
		got, err := ParseGrant(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, g) || !bytes.Equal(got.Bytes(), b) {
			t.Fatal("grant does not round-trip")
		}
		if err := got.VerifySignature(); err != nil {
			t.Fatal(err)
		}
		pub, err := ParsePublicGrant(g.PublicBytes())
		if err != nil {
			t.Fatal(err)
		}
		if pub.KFrag != nil || pub.ID() != g.ID() || pub.VerifySignature() != nil {
			t.Fatal("public grant differs")
		}
		if len(g.BodyBytes()) != GrantBodySize {
			t.Fatalf("body is %d bytes", len(g.BodyBytes()))
		}
		ids[g.ID()] = true
	}
	if len(ids) != len(f.grants) {
		t.Error("fragments of one grant share an ID")
	}
	// Signing is deterministic: re-signing gives the same bytes.
	g := *f.grants[0]
	if err := g.Sign(IdentitySigner(f.owner)); err != nil || g.Signature != f.grants[0].Signature {
		t.Errorf("re-signing changed the signature: %v", err)
	}
}

func TestRecordRoundTrips(t *testing.T) {
	f := newFixture(t)
	r := f.revocation(t, 8)
	if got, err := ParseRevocation(r.Bytes()); err != nil || !reflect.DeepEqual(got, r) || got.VerifySignature() != nil {
		t.Fatalf("revocation: %v", err)
	}
	rc := signedReceipt(t, f.other, ReceiptRevoked, r.ID(), f.grants[0].ID(), r.Owner, r.PathHash, r.Sequence)
	if got, err := ParseReceipt(rc.Bytes()); err != nil || !reflect.DeepEqual(got, rc) || got.VerifySignature() != nil {
		t.Fatalf("receipt: %v", err)
	}
	ni := testNodeInfo(t, f.other)
	if got, err := ParseNodeInfo(ni.Bytes()); err != nil || !reflect.DeepEqual(got, ni) || got.VerifySignature() != nil {
		t.Fatalf("node info: %v", err)
	}
	ni.Algorithms = []PREAlgorithm{1, 2, 200}
	ni.Software = strings.Repeat("~", MaxSoftwareLen)
	if err := ni.Sign(IdentitySigner(f.other)); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseNodeInfo(ni.Bytes()); err != nil || !reflect.DeepEqual(got, ni) || len(ni.Bytes()) != MaxNodeInfoSize-MaxNodeAlgorithms+3 {
		t.Fatalf("long node info: %v", err)
	}
	ni.Software = ""
	ni.Algorithms = []PREAlgorithm{1}
	if err := ni.Sign(IdentitySigner(f.other)); err != nil {
		t.Fatal(err)
	}
	if got, err := ParseNodeInfo(ni.Bytes()); err != nil || !reflect.DeepEqual(got, ni) || len(ni.Bytes()) != MinNodeInfoSize {
		t.Fatalf("short node info: %v", err)
	}
}

// Every bit flip of a signed record is refused by the parser or by the
// signature check.
func TestRecordBitFlips(t *testing.T) {
	f := newFixture(t)
	r := f.revocation(t, 8)
	rc := signedReceipt(t, f.other, ReceiptStored, f.grants[0].ID(), f.grants[0].ID(), r.Owner, r.PathHash, 7)
	ni := testNodeInfo(t, f.other)
	for _, tc := range []struct {
		name  string
		b     []byte
		check func([]byte) error
	}{
		{"grant", f.grants[0].Bytes(), func(b []byte) error {
			g, err := ParseGrant(b)
			if err != nil {
				return err
			}
			return g.VerifySignature()
		}},
		{"revocation", r.Bytes(), func(b []byte) error {
			x, err := ParseRevocation(b)
			if err != nil {
				return err
			}
			return x.VerifySignature()
		}},
		{"receipt", rc.Bytes(), func(b []byte) error {
			x, err := ParseReceipt(b)
			if err != nil {
				return err
			}
			return x.VerifySignature()
		}},
		{"node info", ni.Bytes(), func(b []byte) error {
			x, err := ParseNodeInfo(b)
			if err != nil {
				return err
			}
			return x.VerifySignature()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(tc.b); err != nil {
				t.Fatal(err)
			}
			for i := range len(tc.b) * 8 {
				m := bytes.Clone(tc.b)
				m[i/8] ^= 1 << (i % 8)
				if tc.check(m) == nil {
					t.Fatalf("flip of bit %d accepted", i)
				}
			}
		})
	}
}

// highS returns sig with s replaced by n − s: mathematically valid, but not
// the canonical form.
func highS(sig Signature) Signature {
	n := new(big.Int).SetBytes(curveOrder[:])
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(n, s)
	out := sig
	s.FillBytes(out[32:])
	return out
}

func highSPart(sig Signature) []byte {
	h := highS(sig)
	return h[32:]
}

func TestHighSRefused(t *testing.T) {
	f := newFixture(t)
	g := f.grants[0]
	hs := highS(g.Signature)
	// The high-S twin verifies as plain ECDSA…
	sig, err := rekey.ParseSignature(hs[:])
	if err != nil {
		t.Fatal(err)
	}
	key, _ := g.Owner.Rekey()
	d := signingDigest(LabelGrant, g.BodyBytes())
	if !sig.Verify(key, d[:]) {
		t.Fatal("high-S twin does not verify as plain ECDSA")
	}
	// …but kadre refuses it, so the grant's bytes and ID are unique.
	b := append(g.BodyBytes(), hs[:]...)
	if _, err := ParsePublicGrant(b); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("high-S grant parsed: %v", err)
	}
	g2 := *g
	g2.Signature = hs
	if err := g2.VerifySignature(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("high-S grant verified: %v", err)
	}
}

// mutate returns a copy of b with b[off:off+len(v)] = v.
func mutate(b []byte, off int, v ...byte) []byte {
	m := bytes.Clone(b)
	copy(m[off:], v)
	return m
}

func u64be(v uint64) []byte {
	return appendU64(nil, v)
}

func TestParseGrantRefusals(t *testing.T) {
	f := newFixture(t)
	g := f.grants[0]
	full := g.Bytes()
	bad := offCurveKey(t)
	sigOff := GrantBodySize
	kfOff := PublicGrantSize
	big := append(bytes.Clone(full[:kfOff]), appendU16(nil, MaxKFragSize+1)...)
	big = append(big, make([]byte, MaxKFragSize+1)...)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", full[:len(full)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(full), 0), ErrMalformed},
		{"no kfrag", full[:kfOff], ErrMalformed},
		{"zero-length kfrag", append(bytes.Clone(full[:kfOff]), 0, 0), ErrMalformed},
		{"kfrag too large", big, ErrMalformed},
		{"kfrag length too long", mutate(full, kfOff, 0x01, 0x37), ErrMalformed},
		{"kfrag length too short", mutate(full, kfOff, 0x01, 0x35), ErrMalformed},
		{"kfrag does not match hash", mutate(full, kfOff+100, full[kfOff+100]^1), ErrBadKFrag},
		{"version 0", mutate(full, 0, 0), ErrUnsupportedVersion},
		{"version 2", mutate(full, 0, 2), ErrUnsupportedVersion},
		{"revocation type", mutate(full, 1, recordTypeRevocation), ErrMalformed},
		{"unknown type", mutate(full, 1, 99), ErrMalformed},
		{"PRE algorithm 0", mutate(full, 2, 0), ErrUnknownAlgorithm},
		{"PRE algorithm 2", mutate(full, 2, 2), ErrUnknownAlgorithm},
		{"signature algorithm 7", mutate(full, 3, 7), ErrUnknownAlgorithm},
		{"path hash algorithm 0", mutate(full, 4, 0), ErrUnknownAlgorithm},
		{"owner key uncompressed prefix", mutate(full, 5, 0x04), ErrMalformed},
		{"owner key off curve", mutate(full, 5, bad[:]...), ErrMalformed},
		{"recipient identity key off curve", mutate(full, 38, bad[:]...), ErrMalformed},
		{"recipient receiving key off curve", mutate(full, 71, bad[:]...), ErrMalformed},
		{"delegating key off curve", mutate(full, 136, bad[:]...), ErrMalformed},
		{"verifying key zero", mutate(full, 169, make([]byte, 33)...), ErrMalformed},
		{"m = 0", mutate(full, 202, 0), ErrBadThreshold},
		{"m > n", mutate(full, 202, 6), ErrBadThreshold},
		{"n > 32", mutate(full, 202, 3, 33), ErrBadThreshold},
		{"n = 0", mutate(full, 202, 0, 0), ErrBadThreshold},
		{"sequence 0", mutate(full, 204, u64be(0)...), ErrMalformed},
		{"expiry 0", mutate(full, 212, u64be(0)...), ErrMalformed},
		{"expiry past year 9999", mutate(full, 212, u64be(MaxTimestamp+1)...), ErrMalformed},
		{"signature r = 0", mutate(full, sigOff, make([]byte, 32)...), ErrBadSignature},
		{"signature s = 0", mutate(full, sigOff+32, make([]byte, 32)...), ErrBadSignature},
		{"signature r = n", mutate(full, sigOff, curveOrder[:]...), ErrBadSignature},
		{"signature high S", mutate(full, sigOff+32, highSPart(g.Signature)...), ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGrant(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseGrant error = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") && !strings.Contains(err.Error(), ": policy: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
	// The same refusals through the public form.
	if _, err := ParsePublicGrant(full); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParsePublicGrant(full grant) = %v", err)
	}
	if _, err := ParsePublicGrant(mutate(full[:kfOff], 202, 0)); !errors.Is(err, ErrBadThreshold) {
		t.Errorf("ParsePublicGrant(m=0) = %v", err)
	}
}

func TestParseRevocationRefusals(t *testing.T) {
	f := newFixture(t)
	b := f.revocation(t, 8).Bytes()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", b[:len(b)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(b), 0), ErrMalformed},
		{"version 2", mutate(b, 0, 2), ErrUnsupportedVersion},
		{"grant type", mutate(b, 1, recordTypeGrant), ErrMalformed},
		{"signature algorithm 2", mutate(b, 2, 2), ErrUnknownAlgorithm},
		{"owner key off curve", mutate(b, 3, offCurveKey(t).Bytes()...), ErrMalformed},
		{"recipient key off curve", mutate(b, 36, offCurveKey(t).Bytes()...), ErrMalformed},
		{"sequence 0", mutate(b, 101, u64be(0)...), ErrMalformed},
		{"issued at 0", mutate(b, 109, u64be(0)...), ErrMalformed},
		{"issued after year 9999", mutate(b, 109, u64be(1<<63)...), ErrMalformed},
		{"signature high S", mutate(b, RevocationBodySize+32, highSPart(Signature(b[RevocationBodySize:]))...), ErrBadSignature},
		{"a grant", f.grants[0].PublicBytes(), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRevocation(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("ParseRevocation error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseReceiptRefusals(t *testing.T) {
	f := newFixture(t)
	r := f.revocation(t, 8)
	b := signedReceipt(t, f.other, ReceiptRevoked, r.ID(), f.grants[0].ID(), r.Owner, r.PathHash, r.Sequence).Bytes()
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", b[:len(b)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(b), 0), ErrMalformed},
		{"version 9", mutate(b, 0, 9), ErrUnsupportedVersion},
		{"node info type", mutate(b, 1, recordTypeNodeInfo), ErrMalformed},
		{"signature algorithm 0", mutate(b, 2, 0), ErrUnknownAlgorithm},
		{"kind 0", mutate(b, 3, 0), ErrMalformed},
		{"kind 5", mutate(b, 3, 5), ErrMalformed},
		{"node key off curve", mutate(b, 4, offCurveKey(t).Bytes()...), ErrMalformed},
		{"owner key off curve", mutate(b, 37, offCurveKey(t).Bytes()...), ErrMalformed},
		{"sequence 0", mutate(b, 102, u64be(0)...), ErrMalformed},
		{"issued at 0", mutate(b, 174, u64be(0)...), ErrMalformed},
		{"revoked naming no fragment", mutate(b, 142, make([]byte, 32)...), ErrMalformed},
		{"not held naming a fragment", mutate(b, 3, byte(ReceiptRevokedNotHeld)), ErrMalformed},
		{"kind 2 (retired)", mutate(b, 3, 2), ErrMalformed},
		{"signature s = n", mutate(b, ReceiptBodySize+32, curveOrder[:]...), ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseReceipt(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("ParseReceipt error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseNodeInfoRefusals(t *testing.T) {
	f := newFixture(t)
	ni := testNodeInfo(t, f.other)
	b := ni.Bytes()
	body := ni.BodyBytes()
	withBody := func(body []byte) []byte { return append(bytes.Clone(body), ni.Signature[:]...) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", b[:len(b)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(b), 0), ErrMalformed},
		{"version 0", mutate(b, 0, 0), ErrUnsupportedVersion},
		{"receipt type", mutate(b, 1, recordTypeReceipt), ErrMalformed},
		{"signature algorithm 3", mutate(b, 2, 3), ErrUnknownAlgorithm},
		{"node key off curve", mutate(b, 3, offCurveKey(t).Bytes()...), ErrMalformed},
		{"protocol version 0", mutate(b, 36, 0, 0), ErrMalformed},
		{"max duration 0", mutate(b, 38, u64be(0)...), ErrMalformed},
		{"max duration huge", mutate(b, 38, u64be(MaxTimestamp+1)...), ErrMalformed},
		{"free slots over capacity", mutate(b, 54, u64be(1001)...), ErrMalformed},
		{"issued at 0", mutate(b, 62, u64be(0)...), ErrMalformed},
		{"no algorithms", withBody(append(bytes.Clone(body[:70]), 0, 0)), ErrMalformed},
		{"algorithm 0", mutate(b, 71, 0), ErrMalformed},
		{"algorithms not increasing", withBody(append(append(bytes.Clone(body[:70]), 2, 1, 1), body[72:]...)), ErrMalformed},
		{"too many algorithms", withBody(append(append(bytes.Clone(body[:70]), 9, 1, 2, 3, 4, 5, 6, 7, 8, 9), 0)), ErrMalformed},
		{"software length past the end", mutate(b, 72, 64), ErrMalformed},
		{"software too long", withBody(append(append(bytes.Clone(body[:72]), 65), bytes.Repeat([]byte("a"), 65)...)), ErrMalformed},
		{"software with newline", mutate(b, 73, '\n'), ErrMalformed},
		{"software not ASCII", mutate(b, 73, 0xc3), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseNodeInfo(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("ParseNodeInfo error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignRefusals(t *testing.T) {
	f := newFixture(t)
	g := *f.grants[0]
	if err := g.Sign(IdentitySigner(f.other)); !errors.Is(err, ErrMismatch) {
		t.Errorf("grant signed by a non-owner: %v", err)
	}
	g = *f.grants[0]
	g.Threshold = 0
	if err := g.Sign(IdentitySigner(f.owner)); !errors.Is(err, ErrBadThreshold) {
		t.Errorf("grant with m=0 signed: %v", err)
	}
	g = *f.grants[0]
	g.KFrag = []byte{}
	if err := g.Sign(IdentitySigner(f.owner)); !errors.Is(err, ErrMalformed) {
		t.Errorf("grant with empty kfrag signed: %v", err)
	}
	r := Revocation{Owner: f.grants[0].Owner, Recipient: f.grants[0].Recipient.IdentityKey, PathHash: f.grants[0].PathHash, Sequence: 0, IssuedAt: 1}
	if err := r.Sign(IdentitySigner(f.owner)); !errors.Is(err, ErrMalformed) {
		t.Errorf("revocation with sequence 0 signed: %v", err)
	}
	r.Sequence = 1
	if err := r.Sign(IdentitySigner(f.recipient)); !errors.Is(err, ErrMismatch) {
		t.Errorf("revocation signed by a non-owner: %v", err)
	}
	rc := Receipt{Kind: 9, Owner: r.Owner, Sequence: 1, IssuedAt: 1}
	if err := rc.Sign(IdentitySigner(f.other)); !errors.Is(err, ErrMalformed) {
		t.Errorf("receipt of kind 9 signed: %v", err)
	}
	ni := NodeInfo{ProtocolVersion: 1, MaxGrantDuration: 1, IssuedAt: 1, Algorithms: []PREAlgorithm{1}, Software: "é"}
	if err := ni.Sign(IdentitySigner(f.other)); !errors.Is(err, ErrMalformed) {
		t.Errorf("node info with non-ASCII software signed: %v", err)
	}
}

// Signatures are domain-separated: a valid signature on one record type's
// body is no signature on the same bytes as another type.
func TestLabelsSeparate(t *testing.T) {
	labels := []string{LabelGrant, LabelRevocation, LabelReceipt, LabelNodeInfo}
	for i, a := range labels {
		if !strings.HasPrefix(a, "kadre/") || strings.IndexByte(a, 0) != len(a)-1 {
			t.Errorf("label %q is not kadre/…NUL", a)
		}
		if strings.HasPrefix("noise-libp2p-static-key:", a[:1]) {
			t.Errorf("label %q shares a first byte with the Noise payload", a)
		}
		for j, b := range labels {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("label %q is a prefix of %q", b, a)
			}
		}
	}
	f := newFixture(t)
	r := f.revocation(t, 8)
	body := r.BodyBytes()
	if err := verifyRecord(r.Owner, LabelGrant, body, r.Signature); !errors.Is(err, ErrBadSignature) {
		t.Errorf("revocation signature verifies under the grant label: %v", err)
	}
}

func fuzzRoundTrip[T interface{ Bytes() []byte }](t *testing.T, b []byte, parse func([]byte) (T, error)) {
	v, err := parse(b)
	if err != nil {
		for _, s := range []error{ErrMalformed, ErrUnsupportedVersion, ErrUnknownAlgorithm, ErrBadSignature, ErrBadThreshold, ErrBadKFrag} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if !bytes.Equal(v.Bytes(), b) {
		t.Fatalf("parsed bytes are not canonical:\n in %x\nout %x", b, v.Bytes())
	}
}

func FuzzParseGrant(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.grants[0].Bytes())
	f.Add(fx.grants[1].Bytes()[:PublicGrantSize+5])
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, ParseGrant) })
}

func FuzzParsePublicGrant(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.grants[0].PublicBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, b, func(b []byte) (publicGrant, error) {
			g, err := ParsePublicGrant(b)
			return publicGrant{g}, err
		})
	})
}

type publicGrant struct{ *Grant }

func (g publicGrant) Bytes() []byte { return g.PublicBytes() }

func FuzzParseRevocation(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.revocation(f, 8).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, ParseRevocation) })
}

func FuzzParseReceipt(f *testing.F) {
	fx := newFixture(f)
	r := fx.revocation(f, 8)
	f.Add(signedReceipt(f, fx.other, ReceiptRevoked, r.ID(), fx.grants[0].ID(), r.Owner, r.PathHash, r.Sequence).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, ParseReceipt) })
}

func FuzzParseNodeInfo(f *testing.F) {
	fx := newFixture(f)
	f.Add(testNodeInfo(f, fx.other).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, ParseNodeInfo) })
}
