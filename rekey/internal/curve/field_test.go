package curve

import (
	"encoding/binary"
	"math/big"
	"math/rand/v2"
	"testing"
)

var bigP, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 16)

func feFromBig(v *big.Int) fieldElement {
	var b [32]byte
	new(big.Int).Mod(v, bigP).FillBytes(b[:])
	var z fieldElement
	if feSetBytes(&z, &b) != 1 {
		panic("non-canonical")
	}
	return z
}

// feWeak returns the non-canonical representation v + p of v when v + p <
// 2^256, and v otherwise.
func feWeak(v *big.Int) fieldElement {
	w := new(big.Int).Add(v, bigP)
	if w.BitLen() > 256 {
		return feFromBig(v)
	}
	var b [32]byte
	w.FillBytes(b[:])
	var z fieldElement
	z[3] = binary.BigEndian.Uint64(b[0:8])
	z[2] = binary.BigEndian.Uint64(b[8:16])
	z[1] = binary.BigEndian.Uint64(b[16:24])
	z[0] = binary.BigEndian.Uint64(b[24:32])
	return z
}

func feToBig(x *fieldElement) *big.Int {
	var b [32]byte
	feBytes(&b, x)
	return new(big.Int).SetBytes(b[:])
}

// fieldSamples returns random elements plus edge cases.
func fieldSamples(rng *rand.Rand, n int) []*big.Int {
	one := big.NewInt(1)
	pm1 := new(big.Int).Sub(bigP, one)
	edges := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(7), pm1,
		new(big.Int).Sub(bigP, big.NewInt(2)),
		new(big.Int).Lsh(one, 255),
		new(big.Int).Sub(new(big.Int).Lsh(one, 255), one),
		new(big.Int).Sub(new(big.Int).Lsh(one, 64), one),
		new(big.Int).Lsh(one, 64),
		new(big.Int).Lsh(one, 128),
		new(big.Int).Sub(new(big.Int).Lsh(one, 256), new(big.Int).Lsh(one, 33)), // p - 2^32 + 977 region
		big.NewInt(0x1000003D1), big.NewInt(0x1000003D0), big.NewInt(0x1000003D2), big.NewInt(3), big.NewInt(21),
		new(big.Int).Sub(bigP, big.NewInt(0x1000003D1)),
	}
	out := append([]*big.Int{}, edges...)
	for range n {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		v := new(big.Int).SetBytes(b[:])
		switch rng.IntN(4) {
		case 0: // near p
			v.Rsh(v, 200)
			v.Sub(bigP, v)
			v.Sub(v, one)
		case 1: // sparse limbs
			for i := 0; i < 4; i++ {
				if rng.IntN(2) == 0 {
					v.SetBit(v, 0, 0)
					m := new(big.Int).Lsh(new(big.Int).Sub(new(big.Int).Lsh(one, 64), one), uint(64*i))
					v.AndNot(v, m)
				}
			}
		}
		out = append(out, v.Mod(v, bigP))
	}
	return out
}

func TestFieldOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := fieldSamples(rng, 3000)
	ys := fieldSamples(rng, 3000)
	exp := new(big.Int).Rsh(new(big.Int).Add(bigP, big.NewInt(1)), 2)
	for i := range xs {
		x, y := xs[i], ys[len(ys)-1-i]
		fx, fy := feFromBig(x), feFromBig(y)
		// Weakly reduced inputs: use the representation v + p when it fits.
		if i%3 == 0 {
			fx = feWeak(x)
		}
		if i%5 == 0 {
			fy = feWeak(y)
		}
		check := func(name string, got *fieldElement, want *big.Int) {
			t.Helper()
			want = new(big.Int).Mod(want, bigP)
			if feToBig(got).Cmp(want) != 0 {
				t.Fatalf("%s(%x, %x) = %x, want %x", name, x, y, feToBig(got), want)
			}
		}
		var z fieldElement
		feMul(&z, &fx, &fy)
		check("mul", &z, new(big.Int).Mul(x, y))
		feSquare(&z, &fx)
		check("square", &z, new(big.Int).Mul(x, x))
		feAdd(&z, &fx, &fy)
		check("add", &z, new(big.Int).Add(x, y))
		feSub(&z, &fx, &fy)
		check("sub", &z, new(big.Int).Sub(x, y))
		feNeg(&z, &fx)
		check("neg", &z, new(big.Int).Neg(x))
		feMul21(&z, &fx)
		check("mul21", &z, new(big.Int).Mul(x, big.NewInt(21)))
		feMulSmall(&z, &fx, 0xFFFFFFFF)
		check("mulsmall", &z, new(big.Int).Mul(x, big.NewInt(0xFFFFFFFF)))
		if i < 400 {
			feInvert(&z, &fx)
			want := new(big.Int).ModInverse(x, bigP)
			if want == nil {
				want = new(big.Int)
			}
			check("invert", &z, want)
			ok := feSqrt(&z, &fx)
			isSq := big.Jacobi(x, bigP) >= 0
			if (ok == 1) != isSq {
				t.Fatalf("sqrt(%x) ok = %d, want %v", x, ok, isSq)
			}
			check("sqrtexp", &z, new(big.Int).Exp(x, exp, bigP))
		}
		if got := feEqual(&fx, &fy); (got == 1) != (x.Cmp(y) == 0) {
			t.Fatal("feEqual")
		}
		if got := feIsZero(&fx); (got == 1) != (x.Sign() == 0) {
			t.Fatal("feIsZero")
		}
		feSelect(&z, &fx, &fy, 0)
		check("select0", &z, x)
		feSelect(&z, &fx, &fy, ^uint64(0))
		check("select1", &z, y)
		// Aliasing.
		z = fx
		feMul(&z, &z, &z)
		check("mulalias", &z, new(big.Int).Mul(x, x))
	}
}

func TestFieldSetBytesNonCanonical(t *testing.T) {
	one := big.NewInt(1)
	for _, v := range []*big.Int{
		bigP, new(big.Int).Add(bigP, one), new(big.Int).Sub(new(big.Int).Lsh(one, 256), one),
	} {
		var b [32]byte
		v.FillBytes(b[:])
		var z fieldElement
		if feSetBytes(&z, &b) != 0 {
			t.Fatalf("%x accepted as canonical", v)
		}
		if feToBig(&z).Cmp(new(big.Int).Mod(v, bigP)) != 0 {
			t.Fatal("non-canonical value not reduced")
		}
	}
	var b [32]byte
	new(big.Int).Sub(bigP, one).FillBytes(b[:])
	var z fieldElement
	if feSetBytes(&z, &b) != 1 {
		t.Fatal("p-1 refused")
	}
}

// TestFieldWeakEdges runs every operation on all pairs of a set of
// boundary values in both representations.
func TestFieldWeakEdges(t *testing.T) {
	var vals []fieldElement
	var bigs []*big.Int
	for _, v := range []int64{0, 1, 2, 3, 977, 0x1000003D0, 0x1000003D1, 0x1000003D2, 1 << 40} {
		b := big.NewInt(v)
		vals = append(vals, feFromBig(b), feWeak(b))
		bigs = append(bigs, b, b)
		n := new(big.Int).Sub(bigP, b)
		n.Mod(n, bigP)
		vals = append(vals, feFromBig(n))
		bigs = append(bigs, n)
	}
	all := fieldElement{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)} // 2^256-1 ≡ c-1
	vals = append(vals, all)
	bigs = append(bigs, big.NewInt(0x1000003D0))
	for i, x := range vals {
		for j, y := range vals {
			bx, by := bigs[i], bigs[j]
			var z fieldElement
			for _, c := range []struct {
				name string
				f    func()
				want *big.Int
			}{
				{"add", func() { feAdd(&z, &x, &y) }, new(big.Int).Add(bx, by)},
				{"sub", func() { feSub(&z, &x, &y) }, new(big.Int).Sub(bx, by)},
				{"mul", func() { feMul(&z, &x, &y) }, new(big.Int).Mul(bx, by)},
				{"sqr", func() { feSquare(&z, &x) }, new(big.Int).Mul(bx, bx)},
				{"neg", func() { feNeg(&z, &x) }, new(big.Int).Neg(bx)},
				{"mul21", func() { feMul21(&z, &x) }, new(big.Int).Mul(bx, big.NewInt(21))},
			} {
				c.f()
				if feToBig(&z).Cmp(new(big.Int).Mod(c.want, bigP)) != 0 {
					t.Fatalf("%s(%x, %x) = %x", c.name, bx, by, feToBig(&z))
				}
			}
			if (feEqual(&x, &y) == 1) != (bx.Cmp(by) == 0) {
				t.Fatalf("feEqual(%x, %x)", bx, by)
			}
		}
		if (feIsZero(&x) == 1) != (bigs[i].Sign() == 0) {
			t.Fatal("feIsZero")
		}
		if feIsOdd(&x) != uint64(bigs[i].Bit(0)) {
			t.Fatal("feIsOdd")
		}
	}
}

func TestMontMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	rInv := new(big.Int).ModInverse(new(big.Int).Lsh(big.NewInt(1), 256), bigN)
	toLimbs := func(v *big.Int) [4]uint64 {
		var l [4]uint64
		w := new(big.Int).Set(v)
		for i := range l {
			l[i] = new(big.Int).And(w, new(big.Int).SetUint64(^uint64(0))).Uint64()
			w.Rsh(w, 64)
		}
		return l
	}
	fromLimbs := func(l [4]uint64) *big.Int {
		v := new(big.Int)
		for i := 3; i >= 0; i-- {
			v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(l[i]))
		}
		return v
	}
	vals := append(randomScalars(rng, 2000), new(big.Int).Sub(bigN, big.NewInt(1)))
	for i, x := range vals {
		y := vals[(i*17+3)%len(vals)]
		if i%50 == 0 {
			y = new(big.Int).Sub(bigN, big.NewInt(1))
		}
		xl, yl := toLimbs(x), toLimbs(y)
		var z [4]uint64
		montMul(&z, &xl, &yl)
		want := new(big.Int).Mul(x, y)
		want.Mul(want, rInv).Mod(want, bigN)
		if fromLimbs(z).Cmp(want) != 0 {
			t.Fatalf("montMul(%x, %x) = %x, want %x", x, y, fromLimbs(z), want)
		}
	}
}
