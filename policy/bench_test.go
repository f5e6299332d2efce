package policy

import (
	"testing"
	"time"
)

func BenchmarkPathHash(b *testing.B) {
	f := newFixture(b)
	pair, err := OwnerPairKey(f.owner, IdentityOf(f.recipient).IdentityKey)
	if err != nil {
		b.Fatal(err)
	}
	p := MustNormalizePath("/home/ubuntu/docs/report.pdf")
	b.ReportAllocs()
	for b.Loop() {
		pair.PathHash(p, 0)
	}
}

func BenchmarkPairKey(b *testing.B) {
	f := newFixture(b)
	r := IdentityOf(f.recipient).IdentityKey
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OwnerPairKey(f.owner, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NormalizePath("//home/ubuntu/./docs/report.pdf/"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNormalizePathUnicode is BenchmarkNormalizePath for a
// non-ASCII path in NFD, which the character checks and NFC rewrite.
func BenchmarkNormalizePathUnicode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NormalizePath("//home/zoe\u0308/./documents/re\u0301sume\u0301 \u65e5\u672c.pdf/"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseGrant(b *testing.B) {
	raw := newFixture(b).grants[0].Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseGrant(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// The node's cost of accepting one fragment: dominated by the signature
// and kfrag verifications.
func BenchmarkValidateGrantForStore(b *testing.B) {
	g := newFixture(b).grants[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ValidateGrantForStore(g, testNow, 48*time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
