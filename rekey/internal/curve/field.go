package curve

import (
	"encoding/binary"
	"math/bits"
)

// fieldElement is an integer modulo p = 2^256 - 2^32 - 977 in four 64-bit
// little-endian limbs, weakly reduced: any value in [0, 2^256) is a valid
// representation, so values in [p, 2^256) have two representations. The
// arithmetic accepts and produces weakly reduced values (skipping the final
// conditional subtraction of p saves about 15% of a multiplication);
// feEqual, feIsZero, feIsOdd and feBytes reduce fully before they look at
// the value. Every function runs in time independent of the limb values.
type fieldElement [4]uint64

// reductionConst is c = 2^256 mod p = 2^32 + 977. Because 2^256 ≡ c, the
// high half H of a 512-bit product H·2^256 + L is folded in as L + H·c.
const reductionConst = 0x1000003D1

// p in limbs, least significant first.
const (
	p0 = 0xFFFFFFFEFFFFFC2F
	p1 = 0xFFFFFFFFFFFFFFFF
	p2 = 0xFFFFFFFFFFFFFFFF
	p3 = 0xFFFFFFFFFFFFFFFF
)

var (
	feZero = fieldElement{}
	feOne  = fieldElement{1, 0, 0, 0}
)

// feReduceOnce maps a value v < 2^256 into [0, p): v ≥ p exactly when
// v + c overflows 2^256, in which case (v + c) mod 2^256 = v - p.
func feReduceOnce(z *fieldElement, v0, v1, v2, v3 uint64) {
	t0, c := bits.Add64(v0, reductionConst, 0)
	t1, c := bits.Add64(v1, 0, c)
	t2, c := bits.Add64(v2, 0, c)
	t3, c := bits.Add64(v3, 0, c)
	m := -c // all ones when v ≥ p
	z[0] = v0 ^ (m & (v0 ^ t0))
	z[1] = v1 ^ (m & (v1 ^ t1))
	z[2] = v2 ^ (m & (v2 ^ t2))
	z[3] = v3 ^ (m & (v3 ^ t3))
}

// feAdd sets z = x + y mod p.
func feAdd(z, x, y *fieldElement) {
	s0, c := bits.Add64(x[0], y[0], 0)
	s1, c := bits.Add64(x[1], y[1], c)
	s2, c := bits.Add64(x[2], y[2], c)
	s3, c := bits.Add64(x[3], y[3], c)
	// x + y = s + c·2^256 ≡ s + c·(2^32 + 977).
	s0, c = bits.Add64(s0, reductionConst&-c, 0)
	s1, c = bits.Add64(s1, 0, c)
	s2, c = bits.Add64(s2, 0, c)
	s3, c = bits.Add64(s3, 0, c)
	// A second carry leaves s < 2^32 + 977: the last fold cannot overflow.
	z[0] = s0 + reductionConst&-c
	z[1], z[2], z[3] = s1, s2, s3
}

// feSub sets z = x - y mod p.
func feSub(z, x, y *fieldElement) {
	d0, b := bits.Sub64(x[0], y[0], 0)
	d1, b := bits.Sub64(x[1], y[1], b)
	d2, b := bits.Sub64(x[2], y[2], b)
	d3, b := bits.Sub64(x[3], y[3], b)
	// x - y = d - b·2^256 ≡ d - b·(2^32 + 977).
	d0, b = bits.Sub64(d0, reductionConst&-b, 0)
	d1, b = bits.Sub64(d1, 0, b)
	d2, b = bits.Sub64(d2, 0, b)
	d3, b = bits.Sub64(d3, 0, b)
	// A second borrow means d was below 2^32 + 977 and now wrapped to
	// d - c + 2^256 ≡ d: subtract c once more (this cannot borrow).
	d0, b = bits.Sub64(d0, reductionConst&-b, 0)
	d1, b = bits.Sub64(d1, 0, b)
	d2, b = bits.Sub64(d2, 0, b)
	d3, _ = bits.Sub64(d3, 0, b)
	z[0], z[1], z[2], z[3] = d0, d1, d2, d3
}

// feNeg sets z = -x mod p (0 maps to 0).
func feNeg(z, x *fieldElement) {
	feSub(z, &feZero, x)
}

// feMul sets z = x·y mod p: schoolbook 4x4 product (row by row; MULQ
// clobbers the flags, so each row's carries are materialized), then folds
// of the high half with 2^256 ≡ c until the value fits in 256 bits, all
// inline (the call overhead of helpers is measurable at this size).
func feMul(z, x, y *fieldElement) {
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

	// Fold the high half: r[0..3] + c·r[4..7].
	h0, l0 = bits.Mul64(r4, reductionConst)
	h1, l1 = bits.Mul64(r5, reductionConst)
	h2, l2 = bits.Mul64(r6, reductionConst)
	h3, l3 = bits.Mul64(r7, reductionConst)
	l1, c = bits.Add64(l1, h0, 0)
	l2, c = bits.Add64(l2, h1, c)
	l3, c = bits.Add64(l3, h2, c)
	t := h3 + c
	r0, c = bits.Add64(r0, l0, 0)
	r1, c = bits.Add64(r1, l1, c)
	r2, c = bits.Add64(r2, l2, c)
	r3, c = bits.Add64(r3, l3, c)
	t += c
	// Fold t < 2^34: t·c < 2^68.
	th, tl := bits.Mul64(t, reductionConst)
	r0, c = bits.Add64(r0, tl, 0)
	r1, c = bits.Add64(r1, th, c)
	r2, c = bits.Add64(r2, 0, c)
	r3, c = bits.Add64(r3, 0, c)
	// The value is r + c·2^256. A carry leaves r < 2^68, so adding 2^32 + 977
	// carries at most into limb 1 (< 2^4) and the result stays below 2^256.
	r0, c = bits.Add64(r0, reductionConst&-c, 0)
	z[0], z[1], z[2], z[3] = r0, r1+c, r2, r3
}

// feSquare sets z = x² mod p. The six cross products x_i·x_j (i < j) are
// computed once and doubled, saving six multiplications over feMul.
func feSquare(z, x *fieldElement) { feSquareN(z, x, 1) }

// feSquareN sets z = x^(2^n) for n ≥ 1, keeping the value in registers
// between squarings (the inversion and square-root chains are mostly runs
// of squarings).
func feSquareN(z, x *fieldElement, n int) {
	x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
	for ; n > 0; n-- {
		var c, h, l uint64

		// Cross products at offsets 1..6: x0·(x1,x2,x3), x1·(x2,x3), x2·x3.
		r2, r1 := bits.Mul64(x0, x1)
		h, l = bits.Mul64(x0, x2)
		r2, c = bits.Add64(r2, l, 0)
		r3 := h + c
		h, l = bits.Mul64(x0, x3)
		r3, c = bits.Add64(r3, l, 0)
		r4 := h + c

		a4, a3 := bits.Mul64(x1, x2)
		h, l = bits.Mul64(x1, x3)
		a4, c = bits.Add64(a4, l, 0)
		a5 := h + c
		r3, c = bits.Add64(r3, a3, 0)
		r4, c = bits.Add64(r4, a4, c)
		r5 := a5 + c

		h, l = bits.Mul64(x2, x3)
		r5, c = bits.Add64(r5, l, 0)
		r6 := h + c

		// Double the cross products.
		r7 := r6 >> 63
		r6 = r6<<1 | r5>>63
		r5 = r5<<1 | r4>>63
		r4 = r4<<1 | r3>>63
		r3 = r3<<1 | r2>>63
		r2 = r2<<1 | r1>>63
		r1 = r1 << 1

		// Add the squares x_i² at offsets 2i.
		q1, r0 := bits.Mul64(x0, x0)
		r1, c = bits.Add64(r1, q1, 0)
		h, l = bits.Mul64(x1, x1)
		r2, c = bits.Add64(r2, l, c)
		r3, c = bits.Add64(r3, h, c)
		h, l = bits.Mul64(x2, x2)
		r4, c = bits.Add64(r4, l, c)
		r5, c = bits.Add64(r5, h, c)
		h, l = bits.Mul64(x3, x3)
		r6, c = bits.Add64(r6, l, c)
		r7, _ = bits.Add64(r7, h, c)

		// Fold the high half: r[0..3] + c·r[4..7].
		h0, l0 := bits.Mul64(r4, reductionConst)
		h1, l1 := bits.Mul64(r5, reductionConst)
		h2, l2 := bits.Mul64(r6, reductionConst)
		h3, l3 := bits.Mul64(r7, reductionConst)
		l1, c = bits.Add64(l1, h0, 0)
		l2, c = bits.Add64(l2, h1, c)
		l3, c = bits.Add64(l3, h2, c)
		t := h3 + c
		r0, c = bits.Add64(r0, l0, 0)
		r1, c = bits.Add64(r1, l1, c)
		r2, c = bits.Add64(r2, l2, c)
		r3, c = bits.Add64(r3, l3, c)
		t += c
		// Fold t < 2^34: t·c < 2^68.
		th, tl := bits.Mul64(t, reductionConst)
		r0, c = bits.Add64(r0, tl, 0)
		r1, c = bits.Add64(r1, th, c)
		r2, c = bits.Add64(r2, 0, c)
		r3, c = bits.Add64(r3, 0, c)
		// The value is r + c·2^256. A carry leaves r < 2^68, so adding 2^32 + 977
		// carries at most into limb 1 (< 2^4) and the result stays below 2^256.
		r0, c = bits.Add64(r0, reductionConst&-c, 0)
		x0, x1, x2, x3 = r0, r1+c, r2, r3
	}
	z[0], z[1], z[2], z[3] = x0, x1, x2, x3
}

// feMulSmall sets z = x·s mod p for a small constant s (< 2^32).
func feMulSmall(z, x *fieldElement, s uint64) {
	h0, r0 := bits.Mul64(x[0], s)
	h1, r1 := bits.Mul64(x[1], s)
	h2, r2 := bits.Mul64(x[2], s)
	h3, r3 := bits.Mul64(x[3], s)
	var c uint64
	r1, c = bits.Add64(r1, h0, 0)
	r2, c = bits.Add64(r2, h1, c)
	r3, c = bits.Add64(r3, h2, c)
	t := h3 + c // < 2^32, so t·c < 2^65 and the fold below fits
	th, tl := bits.Mul64(t, reductionConst)
	r0, c = bits.Add64(r0, tl, 0)
	r1, c = bits.Add64(r1, th, c)
	r2, c = bits.Add64(r2, 0, c)
	r3, c = bits.Add64(r3, 0, c)
	// As in feMul: a carry leaves r tiny; fold it once more.
	r0, c = bits.Add64(r0, reductionConst&-c, 0)
	z[0], z[1], z[2], z[3] = r0, r1+c, r2, r3
}

// feMul21 sets z = 21·x = 3b·x, the constant of the RCB formulas for b = 7.
func feMul21(z, x *fieldElement) { feMulSmall(z, x, 21) }

// feX223 returns, in x2 and x22 and the result, the powers a^(2^k - 1) for
// k = 2, 22 and 223 along the addition chain shared by feInvert and feSqrt:
// both exponents start with 223 one bits.
func feX223(x2out, x22out, a *fieldElement) fieldElement {
	var x2, x3, x6, x9, x11, x22, x44, x88, x176, x220, x223 fieldElement
	feSquare(&x2, a)
	feMul(&x2, &x2, a) // a^(2^2-1)
	feSquare(&x3, &x2)
	feMul(&x3, &x3, a) // a^(2^3-1)
	feSquareN(&x6, &x3, 3)
	feMul(&x6, &x6, &x3)
	feSquareN(&x9, &x6, 3)
	feMul(&x9, &x9, &x3)
	feSquareN(&x11, &x9, 2)
	feMul(&x11, &x11, &x2)
	feSquareN(&x22, &x11, 11)
	feMul(&x22, &x22, &x11)
	feSquareN(&x44, &x22, 22)
	feMul(&x44, &x44, &x22)
	feSquareN(&x88, &x44, 44)
	feMul(&x88, &x88, &x44)
	feSquareN(&x176, &x88, 88)
	feMul(&x176, &x176, &x88)
	feSquareN(&x220, &x176, 44)
	feMul(&x220, &x220, &x44)
	feSquareN(&x223, &x220, 3)
	feMul(&x223, &x223, &x3)
	*x2out = x2
	*x22out = x22
	return x223
}

// feInvert sets z = x^(p-2) = x^-1 mod p (0 maps to 0), in constant time.
// p - 2 in binary is 223 ones, a zero, 22 ones, then 0000101101; the chain
// below (255 squarings, 15 multiplications) follows that bit pattern.
func feInvert(z, x *fieldElement) {
	var x2, x22 fieldElement
	a := *x
	t := feX223(&x2, &x22, &a)
	feSquareN(&t, &t, 23) // "0" + 22 bits
	feMul(&t, &t, &x22)
	feSquareN(&t, &t, 5) // 00001
	feMul(&t, &t, &a)
	feSquareN(&t, &t, 3) // 011
	feMul(&t, &t, &x2)
	feSquareN(&t, &t, 2) // 01
	feMul(&t, &t, &a)
	*z = t
}

// feSqrt sets z = x^((p+1)/4), a square root of x when one exists (p ≡ 3
// mod 4), and reports whether z² = x, as 1 or 0. (p+1)/4 in binary is 223
// ones, a zero, 22 ones, then 00001100.
func feSqrt(z, x *fieldElement) uint64 {
	var x2, x22 fieldElement
	a := *x
	t := feX223(&x2, &x22, &a)
	feSquareN(&t, &t, 23)
	feMul(&t, &t, &x22)
	feSquareN(&t, &t, 6) // 000011
	feMul(&t, &t, &x2)
	feSquareN(&t, &t, 2) // 00
	var chk fieldElement
	feSquare(&chk, &t)
	*z = t
	return feEqual(&chk, &a)
}

// feCanonical returns x fully reduced into [0, p).
func feCanonical(x *fieldElement) fieldElement {
	var z fieldElement
	feReduceOnce(&z, x[0], x[1], x[2], x[3])
	return z
}

// feIsZero returns 1 if x ≡ 0 and 0 otherwise, in constant time.
func feIsZero(x *fieldElement) uint64 {
	c := feCanonical(x)
	v := c[0] | c[1] | c[2] | c[3]
	return 1 ^ ((v | -v) >> 63)
}

// feEqual returns 1 if x ≡ y and 0 otherwise, in constant time.
func feEqual(x, y *fieldElement) uint64 {
	a, b := feCanonical(x), feCanonical(y)
	v := (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])
	return 1 ^ ((v | -v) >> 63)
}

// feIsOdd returns the least significant bit of the canonical value of x.
func feIsOdd(x *fieldElement) uint64 {
	c := feCanonical(x)
	return c[0] & 1
}

// feSelect sets z = b if m is all ones and z = a if m is zero.
func feSelect(z, a, b *fieldElement, m uint64) {
	z[0] = a[0] ^ (m & (a[0] ^ b[0]))
	z[1] = a[1] ^ (m & (a[1] ^ b[1]))
	z[2] = a[2] ^ (m & (a[2] ^ b[2]))
	z[3] = a[3] ^ (m & (a[3] ^ b[3]))
}

// feCondNeg sets z = -x if m is all ones and z = x if m is zero.
func feCondNeg(z, x *fieldElement, m uint64) {
	var n fieldElement
	feNeg(&n, x)
	feSelect(z, x, &n, m)
}

// feSetBytes decodes a 32-byte big-endian value and returns 1 if it is
// canonical (< p); non-canonical inputs leave z reduced mod p and return 0.
func feSetBytes(z *fieldElement, b *[32]byte) uint64 {
	v3 := binary.BigEndian.Uint64(b[0:8])
	v2 := binary.BigEndian.Uint64(b[8:16])
	v1 := binary.BigEndian.Uint64(b[16:24])
	v0 := binary.BigEndian.Uint64(b[24:32])
	_, c := bits.Add64(v0, reductionConst, 0)
	_, c = bits.Add64(v1, 0, c)
	_, c = bits.Add64(v2, 0, c)
	_, c = bits.Add64(v3, 0, c)
	feReduceOnce(z, v0, v1, v2, v3)
	return 1 ^ c
}

// feBytes returns the 32-byte big-endian encoding of the canonical value
// of x.
func feBytes(out *[32]byte, x *fieldElement) {
	c := feCanonical(x)
	x = &c
	binary.BigEndian.PutUint64(out[0:8], x[3])
	binary.BigEndian.PutUint64(out[8:16], x[2])
	binary.BigEndian.PutUint64(out[16:24], x[1])
	binary.BigEndian.PutUint64(out[24:32], x[0])
}
