package rekey

import (
	"crypto/rand"
	"testing"
)

// Benchmarks of every Umbral operation, with the reference's settings:
// 1 KiB plaintext, 3-of-5, both keys signed. scripts/bench-umbral.sh runs
// the same operations side by side with the reference and prints ratios.

type benchFixture struct {
	a, b, s  party
	pt       []byte
	capsule  *Capsule
	ct       []byte
	kfrags   []*VerifiedKeyFrag
	cfrags   []*VerifiedCapsuleFrag
	kfragB   []byte
	cfragB   []byte
	capsuleB []byte
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	f := &benchFixture{a: newParty(b, "alice"), b: newParty(b, "bob"), s: newParty(b, "signer"), pt: make([]byte, 1024)}
	rand.Read(f.pt)
	var err error
	if f.capsule, f.ct, err = Encrypt(f.a.sk.PublicKey(), f.pt); err != nil {
		b.Fatal(err)
	}
	if f.kfrags, err = GenerateKFrags(f.a.sk, f.b.sk.PublicKey(), f.s.signer, 3, 5, true, true); err != nil {
		b.Fatal(err)
	}
	for _, k := range f.kfrags {
		f.cfrags = append(f.cfrags, mustReencrypt(b, f.capsule, k))
	}
	f.kfragB, f.cfragB, f.capsuleB = f.kfrags[0].Bytes(), f.cfrags[0].Bytes(), f.capsule.Bytes()
	return f
}

func BenchmarkEncrypt(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		Encrypt(f.a.sk.PublicKey(), f.pt)
	}
}

func BenchmarkDecryptOriginal(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecryptOriginal(f.a.sk, f.capsule, f.ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateKFrags3of5(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		GenerateKFrags(f.a.sk, f.b.sk.PublicKey(), f.s.signer, 3, 5, true, true)
	}
}

func BenchmarkKFragVerify(b *testing.B) {
	f := newBenchFixture(b)
	kf, err := ParseKeyFrag(f.kfragB)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kf.Verify(f.s.sk.PublicKey(), f.a.sk.PublicKey(), f.b.sk.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReencrypt(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Reencrypt(f.capsule, f.kfrags[0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCFragVerify(b *testing.B) {
	f := newBenchFixture(b)
	cf, err := ParseCapsuleFrag(f.cfragB)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cf.Verify(f.capsule, f.s.sk.PublicKey(), f.a.sk.PublicKey(), f.b.sk.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptReencrypted3(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecryptReencrypted(f.b.sk, f.a.sk.PublicKey(), f.capsule, f.cfrags[:3], f.ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCapsule(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCapsule(f.capsuleB); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseKeyFrag(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseKeyFrag(f.kfragB); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCapsuleFrag(b *testing.B) {
	f := newBenchFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCapsuleFrag(f.cfragB); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	s := newParty(b, "signer")
	msg := make([]byte, 134)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.signer.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	s := newParty(b, "signer")
	msg := make([]byte, 134)
	sig := mustSign(b, s.signer, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !sig.Verify(s.sk.PublicKey(), msg) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkMakeKey(b *testing.B) {
	k, err := NewKeyring(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		k.DelegatingKey("/home/ubuntu")
	}
}
