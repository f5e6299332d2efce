package curve

import "math/bits"

// Constant-time arithmetic modulo the group order n in the Montgomery
// domain (R = 2^256), used by InvertScalar and glvSplit: decred's
// ModNScalar works on 32-bit limbs and its Mul costs several times a 4x64
// Montgomery multiplication on this hardware.

// nPrime = -n^-1 mod 2^64; montR2 = R² mod n.
const nPrime = 0x4B0DFF665588B13F

var montR2 = [4]uint64{0x896CF21467D7D140, 0x741496C20E7CF878, 0xE697F5E45BCD07C6, 0x9D671CD581C69BC5}

// montMul sets z = x·y·R^-1 mod n for x, y < n: the 4x4 product (as in
// feMul), then word-by-word Montgomery reduction (REDC: Montgomery, "Modular
// multiplication without trial division", Math. Comp. 1985), ending with a
// constant-time conditional subtraction of n.
func montMul(z, x, y *[4]uint64) {
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	y0, y1, y2, y3 := y[0], y[1], y[2], y[3]
	var c uint64

	h0, r0 := bits.Mul64(x0, y0)
	h1, l1 := bits.Mul64(x0, y1)
	h2, l2 := bits.Mul64(x0, y2)
	h3, l3 := bits.Mul64(x0, y3)
	r1, c := bits.Add64(l1, h0, 0)
	r2, c := bits.Add64(l2, h1, c)
	r3, c := bits.Add64(l3, h2, c)
	r4 := h3 + c

	h0, l0 := bits.Mul64(x1, y0)
	h1, l1 = bits.Mul64(x1, y1)
	h2, l2 = bits.Mul64(x1, y2)
	h3, l3 = bits.Mul64(x1, y3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	r1, c = bits.Add64(r1, l0, 0)
	r2, c = bits.Add64(r2, l1, c)
	r3, c = bits.Add64(r3, l2, c)
	r4, c = bits.Add64(r4, l3, c)
	r5 := h3 + c

	h0, l0 = bits.Mul64(x2, y0)
	h1, l1 = bits.Mul64(x2, y1)
	h2, l2 = bits.Mul64(x2, y2)
	h3, l3 = bits.Mul64(x2, y3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	r2, c = bits.Add64(r2, l0, 0)
	r3, c = bits.Add64(r3, l1, c)
	r4, c = bits.Add64(r4, l2, c)
	r5, c = bits.Add64(r5, l3, c)
	r6 := h3 + c

	h0, l0 = bits.Mul64(x3, y0)
	h1, l1 = bits.Mul64(x3, y1)
	h2, l2 = bits.Mul64(x3, y2)
	h3, l3 = bits.Mul64(x3, y3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	r3, c = bits.Add64(r3, l0, 0)
	r4, c = bits.Add64(r4, l1, c)
	r5, c = bits.Add64(r5, l2, c)
	r6, c = bits.Add64(r6, l3, c)
	r7 := h3 + c

	// Montgomery reduction, one word per round: add m·n with
	// m = r_i·(-n^-1) mod 2^64 so that word i vanishes, then drop it.
	// r8 collects the single possible overflow bit (the sum stays below
	// 2·n·2^256 < 2^513).
	var r8, m uint64
	m = r0 * nPrime
	h0, l0 = bits.Mul64(m, n0)
	h1, l1 = bits.Mul64(m, n1)
	h2, l2 = bits.Mul64(m, n2)
	h3, l3 = bits.Mul64(m, n3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	_, c = bits.Add64(r0, l0, 0)
	r1, c = bits.Add64(r1, l1, c)
	r2, c = bits.Add64(r2, l2, c)
	r3, c = bits.Add64(r3, l3, c)
	r4, c = bits.Add64(r4, h3, c)
	r5, c = bits.Add64(r5, 0, c)
	r6, c = bits.Add64(r6, 0, c)
	r7, c = bits.Add64(r7, 0, c)
	r8 += c
	m = r1 * nPrime
	h0, l0 = bits.Mul64(m, n0)
	h1, l1 = bits.Mul64(m, n1)
	h2, l2 = bits.Mul64(m, n2)
	h3, l3 = bits.Mul64(m, n3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	_, c = bits.Add64(r1, l0, 0)
	r2, c = bits.Add64(r2, l1, c)
	r3, c = bits.Add64(r3, l2, c)
	r4, c = bits.Add64(r4, l3, c)
	r5, c = bits.Add64(r5, h3, c)
	r6, c = bits.Add64(r6, 0, c)
	r7, c = bits.Add64(r7, 0, c)
	r8 += c
	m = r2 * nPrime
	h0, l0 = bits.Mul64(m, n0)
	h1, l1 = bits.Mul64(m, n1)
	h2, l2 = bits.Mul64(m, n2)
	h3, l3 = bits.Mul64(m, n3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	_, c = bits.Add64(r2, l0, 0)
	r3, c = bits.Add64(r3, l1, c)
	r4, c = bits.Add64(r4, l2, c)
	r5, c = bits.Add64(r5, l3, c)
	r6, c = bits.Add64(r6, h3, c)
	r7, c = bits.Add64(r7, 0, c)
	r8 += c
	m = r3 * nPrime
	h0, l0 = bits.Mul64(m, n0)
	h1, l1 = bits.Mul64(m, n1)
	h2, l2 = bits.Mul64(m, n2)
	h3, l3 = bits.Mul64(m, n3)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	h3 += c
	_, c = bits.Add64(r3, l0, 0)
	r4, c = bits.Add64(r4, l1, c)
	r5, c = bits.Add64(r5, l2, c)
	r6, c = bits.Add64(r6, l3, c)
	r7, c = bits.Add64(r7, h3, c)
	r8 += c
	// r8·2^256 + r7..r4 < 2n: subtract n unless that borrows.
	d0, b := bits.Sub64(r4, n0, 0)
	d1, b := bits.Sub64(r5, n1, b)
	d2, b := bits.Sub64(r6, n2, b)
	d3, b := bits.Sub64(r7, n3, b)
	_, b = bits.Sub64(r8, 0, b)
	mask := -b // all ones: keep r
	z[0] = d0 ^ (mask & (d0 ^ r4))
	z[1] = d1 ^ (mask & (d1 ^ r5))
	z[2] = d2 ^ (mask & (d2 ^ r6))
	z[3] = d3 ^ (mask & (d3 ^ r7))
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
