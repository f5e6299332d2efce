package curve

import (
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

func benchScalar() *Scalar {
	var b [32]byte
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	var s Scalar
	s.SetBytes(&b)
	return &s
}

func BenchmarkFieldMul(b *testing.B) {
	x := feFromBig(bigP)
	x[0] = 0x123456789
	y := genX
	b.ReportAllocs()
	for b.Loop() {
		feMul(&x, &x, &y)
	}
}

func BenchmarkFieldSquare(b *testing.B) {
	x := genY
	b.ReportAllocs()
	for b.Loop() {
		feSquare(&x, &x)
	}
}

func BenchmarkFieldInvert(b *testing.B) {
	x := genY
	b.ReportAllocs()
	for b.Loop() {
		feInvert(&x, &x)
	}
}

func BenchmarkScalarMult(b *testing.B) {
	k := benchScalar()
	p := NewGeneratorPoint()
	p.Set(dbl(p))
	var r Point
	b.ReportAllocs()
	for b.Loop() {
		r.ScalarMult(k, p)
	}
}

func BenchmarkScalarBaseMult(b *testing.B) {
	k := benchScalar()
	var r Point
	r.ScalarBaseMult(k)
	b.ReportAllocs()
	for b.Loop() {
		r.ScalarBaseMult(k)
	}
}

func BenchmarkScalarMultTable(b *testing.B) {
	k := benchScalar()
	p := NewGeneratorPoint()
	p.Set(dbl(p))
	t := NewTable(p)
	var r Point
	b.ReportAllocs()
	for b.Loop() {
		r.ScalarMultTable(k, t)
	}
}

func BenchmarkNewTable(b *testing.B) {
	p := NewGeneratorPoint()
	b.ReportAllocs()
	for b.Loop() {
		NewTable(p)
	}
}

func BenchmarkScalarMultVartime(b *testing.B) {
	k := benchScalar()
	p := NewGeneratorPoint()
	p.Set(dbl(p))
	var r Point
	b.ReportAllocs()
	for b.Loop() {
		r.ScalarMultVartime(k, p)
	}
}

func BenchmarkScalarBaseMultVartime(b *testing.B) {
	k := benchScalar()
	var r Point
	r.ScalarBaseMultVartime(k)
	b.ReportAllocs()
	for b.Loop() {
		r.ScalarBaseMultVartime(k)
	}
}

func BenchmarkDoubleScalarMultVartime(b *testing.B) {
	k := benchScalar()
	var k2 Scalar
	k2.SquareVal(k)
	p := NewGeneratorPoint()
	q := dbl(p)
	var r Point
	b.ReportAllocs()
	for b.Loop() {
		r.DoubleScalarMultVartime(k, p, &k2, q)
	}
}

func BenchmarkDoubleScalarMultVartimeNoG(b *testing.B) {
	k := benchScalar()
	var k2 Scalar
	k2.SquareVal(k)
	p := dbl(NewGeneratorPoint())
	q := dbl(p)
	var r Point
	b.ReportAllocs()
	for b.Loop() {
		r.DoubleScalarMultVartime(k, p, &k2, q)
	}
}

func benchMSM(b *testing.B, n int) {
	k := benchScalar()
	ks := make([]*Scalar, n)
	ps := make([]*Point, n)
	p := NewGeneratorPoint()
	for i := range ks {
		var s Scalar
		s.SquareVal(k)
		k = &s
		ks[i] = k
		p = dbl(p)
		ps[i] = p
	}
	var r Point
	b.ReportAllocs()
	for b.Loop() {
		r.MultiScalarMult(ks, ps)
	}
}

func BenchmarkMultiScalarMult3(b *testing.B)  { benchMSM(b, 3) }
func BenchmarkMultiScalarMult30(b *testing.B) { benchMSM(b, 30) }

func BenchmarkBatchCompressed30(b *testing.B) {
	ps := make([]*Point, 30)
	p := NewGeneratorPoint()
	for i := range ps {
		p = dbl(p)
		ps[i] = p
	}
	b.ReportAllocs()
	for b.Loop() {
		BatchCompressed(ps)
	}
}

func BenchmarkCompressed(b *testing.B) {
	p := NewGeneratorPoint()
	p.Set(dbl(p))
	b.ReportAllocs()
	for b.Loop() {
		p.Compressed()
	}
}

func BenchmarkSetBytes(b *testing.B) {
	p := NewGeneratorPoint()
	p.Set(dbl(p))
	enc, _ := p.Compressed()
	var q Point
	b.ReportAllocs()
	for b.Loop() {
		q.SetBytes(enc[:])
	}
}

func BenchmarkInvertScalar(b *testing.B) {
	k := benchScalar()
	var r Scalar
	b.ReportAllocs()
	for b.Loop() {
		InvertScalar(&r, k)
	}
}

func BenchmarkDecredScalarMultNonConst(b *testing.B) {
	k := benchScalar()
	var p, r secp256k1.JacobianPoint
	var one Scalar
	one.SetInt(2)
	secp256k1.ScalarBaseMultNonConst(&one, &p)
	b.ReportAllocs()
	for b.Loop() {
		secp256k1.ScalarMultNonConst(k, &p, &r)
	}
}
