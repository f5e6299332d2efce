package curve

import "math/bits"

// Constant-time arithmetic modulo the group order n in the Montgomery
// domain (R = 2^256), used by InvertScalar and glvSplit: decred's
// ModNScalar works on 32-bit limbs and its Mul costs several times a 4x64
// Montgomery multiplication on this hardware.

// nPrime = -n^-1 mod 2^64; montR2 = R² mod n.
const nPrime = 0x4B0DFF665588B13F

var montR2 = [4]uint64{0x896CF21467D7D140, 0x741496C20E7CF878, 0xE697F5E45BCD07C6, 0x9D671CD581C69BC5}

// montMul sets z = x·y·R^-1 mod n for x, y < n (CIOS method: Koç, Acar,
// Kaliski, "Analyzing and comparing Montgomery multiplication algorithms",
// IEEE Micro 1996), ending with a constant-time conditional subtraction.
func montMul(z, x, y *[4]uint64) {
	nn := [4]uint64{n0, n1, n2, n3}
	var t0, t1, t2, t3, t4 uint64
	for i := 0; i < 4; i++ {
		yi := y[i]
		// t += x·y_i
		var c, h, l, cc uint64
		h, l = bits.Mul64(x[0], yi)
		t0, cc = bits.Add64(t0, l, 0)
		c = h + cc
		h, l = bits.Mul64(x[1], yi)
		l, cc = bits.Add64(l, c, 0)
		h += cc
		t1, cc = bits.Add64(t1, l, 0)
		c = h + cc
		h, l = bits.Mul64(x[2], yi)
		l, cc = bits.Add64(l, c, 0)
		h += cc
		t2, cc = bits.Add64(t2, l, 0)
		c = h + cc
		h, l = bits.Mul64(x[3], yi)
		l, cc = bits.Add64(l, c, 0)
		h += cc
		t3, cc = bits.Add64(t3, l, 0)
		c = h + cc
		t4, cc = bits.Add64(t4, c, 0)
		t5 := cc

		// t = (t + m·n) / 2^64 with m chosen so the low word vanishes.
		m := t0 * nPrime
		h, l = bits.Mul64(m, nn[0])
		_, cc = bits.Add64(t0, l, 0)
		c = h + cc
		h, l = bits.Mul64(m, nn[1])
		l, cc = bits.Add64(l, c, 0)
		h += cc
		t0, cc = bits.Add64(t1, l, 0)
		c = h + cc
		h, l = bits.Mul64(m, nn[2])
		l, cc = bits.Add64(l, c, 0)
		h += cc
		t1, cc = bits.Add64(t2, l, 0)
		c = h + cc
		h, l = bits.Mul64(m, nn[3])
		l, cc = bits.Add64(l, c, 0)
		h += cc
		t2, cc = bits.Add64(t3, l, 0)
		c = h + cc
		t3, cc = bits.Add64(t4, c, 0)
		t4 = t5 + cc
	}
	// t < 2n: subtract n unless that borrows (taking t4 into account).
	d0, b := bits.Sub64(t0, n0, 0)
	d1, b := bits.Sub64(t1, n1, b)
	d2, b := bits.Sub64(t2, n2, b)
	d3, b := bits.Sub64(t3, n3, b)
	_, b = bits.Sub64(t4, 0, b)
	m := -b // all ones: keep t
	z[0] = d0 ^ (m & (d0 ^ t0))
	z[1] = d1 ^ (m & (d1 ^ t1))
	z[2] = d2 ^ (m & (d2 ^ t2))
	z[3] = d3 ^ (m & (d3 ^ t3))
}

// InvertScalar sets out = k^-1 mod n (0 for k = 0) and returns out.
// It runs in constant time: Fermat's little theorem, k^(n-2), with a fixed
// 4-bit window over the public exponent n-2 (the sequence of squarings and
// multiplications depends only on n), in Montgomery arithmetic.
func InvertScalar(out, k *Scalar) *Scalar {
	kl := scalarLimbs(k)
	var x [4]uint64
	montMul(&x, &kl, &montR2) // k·R
	// pow[i] = k^(i+1)·R.
	var pow [15][4]uint64
	pow[0] = x
	for i := 1; i < 15; i++ {
		montMul(&pow[i], &pow[i-1], &x)
	}
	e := [4]uint64{n0 - 2, n1, n2, n3}
	r := pow[(e[3]>>60)-1] // top nibble of n-2 is 0xF
	for j := 62; j >= 0; j-- {
		montMul(&r, &r, &r)
		montMul(&r, &r, &r)
		montMul(&r, &r, &r)
		montMul(&r, &r, &r)
		if nib := (e[j/16] >> (uint(j%16) * 4)) & 0xF; nib != 0 {
			montMul(&r, &r, &pow[nib-1])
		}
	}
	one := [4]uint64{1, 0, 0, 0}
	montMul(&r, &r, &one) // leave the Montgomery domain
	s := scalarFromLimbs(r)
	return out.Set(&s)
}
