package curve

import (
	"math/bits"
	"sync"
)

// Constant-time scalar multiplication.
//
// Variable base (ScalarMult): k = k1 + k2·λ (glvSplit), both halves made
// odd (adding 1 to an even half and subtracting the base point once at the
// end), recoded in signed odd digits of width glvW, and evaluated with a
// shared doubling chain against two affine tables of odd multiples of ±P and
// ±φ(P). The tables are normalized to affine with a single inversion so the
// main loop uses mixed additions.

const (
	glvW       = 5                              // window width
	glvDigits  = 26                             // digits for odd values < 2^130
	glvEntries = 1 << (glvW - 1)                // odd multiples 1P, 3P, …, 31P
	_          = uint(glvW*glvDigits - 130)     // compile-time check: glvW·glvDigits ≥ 130
	_          = uint(129 - glvW*(glvDigits-1)) // and glvDigits-1 digits would not do
)

// ctEqMask returns all ones if a = b and 0 otherwise (a, b < 2^63).
func ctEqMask(a, b uint64) uint64 {
	return -(((a ^ b) - 1) >> 63)
}

// digitMasks splits an odd signed digit d into the table index (|d|-1)/2
// and an all-ones mask when d < 0.
func digitMasks(d int32) (idx, neg uint64) {
	s := d >> 31 // 0 or -1
	abs := (d ^ s) - s
	return uint64(abs >> 1), uint64(int64(s))
}

// lookupAffine16 sets out = ±t[idx], negated when neg is all ones, reading
// every entry of t.
func lookupAffine16(out *affinePoint, t *[glvEntries]affinePoint, idx, neg uint64) {
	// Scalar accumulators stay in registers (an array would live on the
	// stack, making every OR a read-modify-write through memory).
	var x0, x1, x2, x3, y0, y1, y2, y3 uint64
	for i := range t {
		m := ctEqMask(uint64(i), idx)
		e := &t[i]
		x0 |= e.x[0] & m
		x1 |= e.x[1] & m
		x2 |= e.x[2] & m
		x3 |= e.x[3] & m
		y0 |= e.y[0] & m
		y1 |= e.y[1] & m
		y2 |= e.y[2] & m
		y3 |= e.y[3] & m
	}
	out.x = fieldElement{x0, x1, x2, x3}
	y := fieldElement{y0, y1, y2, y3}
	feCondNeg(&out.y, &y, neg)
}

// glvTables fills t1 with the odd multiples (2i+1)·P in affine form and t2
// with φ((2i+1)·P) = (β·x, y). P must not be the identity.
func glvTables(t1, t2 *[glvEntries]affinePoint, p *projPoint) {
	var proj [glvEntries]projPoint
	var scratch [glvEntries]fieldElement
	var p2 projPoint
	proj[0] = *p
	projDouble(&p2, p)
	for i := 1; i < glvEntries; i++ {
		projAdd(&proj[i], &proj[i-1], &p2)
	}
	batchToAffine(t1[:], proj[:], scratch[:])
	for i := range t1 {
		feMul(&t2[i].x, &t1[i].x, &betaFE)
		t2[i].y = t1[i].y
	}
}

// ScalarMult sets v = k·p and returns v, in constant time. p may be the
// identity (the result is then the identity).
func (v *Point) ScalarMult(k *Scalar, p *Point) *Point {
	var t1, t2 [glvEntries]affinePoint
	isID := glvBase(&t1, &t2, p)
	glvMul(&v.p, k, &t1, &t2, isID)
	return v
}

// ScalarMultPair sets a = k1·p and b = k2·p in constant time, sharing the
// precomputed tables of p (a quarter of a multiplication saved). p may be
// the identity.
func ScalarMultPair(a, b *Point, k1, k2 *Scalar, p *Point) {
	var t1, t2 [glvEntries]affinePoint
	isID := glvBase(&t1, &t2, p)
	glvMul(&a.p, k1, &t1, &t2, isID)
	glvMul(&b.p, k2, &t1, &t2, isID)
}

// glvBase fills the GLV tables of p and returns an all-ones mask if p is
// the identity: the identity cannot be made affine, so G is substituted
// and the result discarded by glvMul.
func glvBase(t1, t2 *[glvEntries]affinePoint, p *Point) uint64 {
	var base projPoint
	isID := -projIsIdentity(&p.p)
	g := generatorProj()
	projSelect(&base, &p.p, &g, isID)
	glvTables(t1, t2, &base)
	return isID
}

// glvMul sets out = k·P from P's GLV tables, in constant time; isID (all
// ones) makes the result the identity.
func glvMul(out *projPoint, k *Scalar, t1, t2 *[glvEntries]affinePoint, isID uint64) {
	h1, h2 := glvSplit(k)
	even1 := h1.makeOdd()
	even2 := h2.makeOdd()

	var acc projPoint
	var a affinePoint
	idx, neg := digitMasks(oddDigit(h1.abs[:], glvDigits-1, glvW, glvDigits))
	lookupAffine16(&a, t1, idx, neg^h1.neg)
	acc.x, acc.y, acc.z = a.x, a.y, feOne
	idx, neg = digitMasks(oddDigit(h2.abs[:], glvDigits-1, glvW, glvDigits))
	lookupAffine16(&a, t2, idx, neg^h2.neg)
	projAddMixed(&acc, &acc, &a)

	for j := glvDigits - 2; j >= 0; j-- {
		for range glvW {
			projDouble(&acc, &acc)
		}
		idx, neg = digitMasks(oddDigit(h1.abs[:], uint(j), glvW, glvDigits))
		lookupAffine16(&a, t1, idx, neg^h1.neg)
		projAddMixed(&acc, &acc, &a)
		idx, neg = digitMasks(oddDigit(h2.abs[:], uint(j), glvW, glvDigits))
		lookupAffine16(&a, t2, idx, neg^h2.neg)
		projAddMixed(&acc, &acc, &a)
	}

	// Undo the +1 of even halves: add ∓P (resp. ∓φ(P)) and keep the sum only
	// where needed.
	var corr projPoint
	a.x = t1[0].x
	feCondNeg(&a.y, &t1[0].y, ^h1.neg)
	projAddMixed(&corr, &acc, &a)
	projSelect(&acc, &acc, &corr, even1)
	a.x = t2[0].x
	feCondNeg(&a.y, &t2[0].y, ^h2.neg)
	projAddMixed(&corr, &acc, &a)
	projSelect(&acc, &acc, &corr, even2)

	var id projPoint
	projSetIdentity(&id)
	projSelect(out, &acc, &id, isID)
}

// Fixed-base tables. A Table for base B holds, for each of the 64 radix-16
// positions j, the odd multiples (2i+1)·16^j·B for i < 8, in affine form.
// An odd k < 2^256 recoded in 64 signed odd digits of width 4 is then
// Σ d_j·16^j and k·B is a sum of 64 table points: no doublings at all.
// Even k are handled as k·B = -((n - k)·B), since n - k is odd.

const (
	tableW       = 4
	tableDigits  = 64
	tableEntries = 1 << (tableW - 1)
)

// Table is a precomputed table for constant-time multiplication of a fixed
// base point (32 KiB). It is immutable after NewTable and safe for
// concurrent use.
type Table struct {
	t        [tableDigits][tableEntries]affinePoint
	identity uint64 // all ones if the base is the identity
}

// NewTable precomputes the table for base p. This costs about as much as
// twenty scalar multiplications; it is worth it for bases used many times.
func NewTable(p *Point) *Table {
	t := new(Table)
	base := p.p
	if projIsIdentity(&base) == 1 {
		t.identity = ^uint64(0)
		base = generatorProj()
	}
	proj := make([]projPoint, tableDigits*tableEntries)
	for j := 0; j < tableDigits; j++ {
		row := proj[j*tableEntries : (j+1)*tableEntries]
		row[0] = base
		var b2 projPoint
		projDouble(&b2, &base)
		for i := 1; i < tableEntries; i++ {
			projAdd(&row[i], &row[i-1], &b2)
		}
		// 16·B = 15·B + B.
		projAdd(&base, &row[tableEntries-1], &row[0])
	}
	flat := make([]affinePoint, tableDigits*tableEntries)
	batchToAffine(flat, proj, make([]fieldElement, len(proj)))
	for j := range t.t {
		copy(t.t[j][:], flat[j*tableEntries:(j+1)*tableEntries])
	}
	return t
}

// lookupAffine8 sets out = ±t[idx] reading every entry of t.
func lookupAffine8(out *affinePoint, t *[tableEntries]affinePoint, idx, neg uint64) {
	// Scalar accumulators stay in registers (an array would live on the
	// stack, making every OR a read-modify-write through memory).
	var x0, x1, x2, x3, y0, y1, y2, y3 uint64
	for i := range t {
		m := ctEqMask(uint64(i), idx)
		e := &t[i]
		x0 |= e.x[0] & m
		x1 |= e.x[1] & m
		x2 |= e.x[2] & m
		x3 |= e.x[3] & m
		y0 |= e.y[0] & m
		y1 |= e.y[1] & m
		y2 |= e.y[2] & m
		y3 |= e.y[3] & m
	}
	out.x = fieldElement{x0, x1, x2, x3}
	y := fieldElement{y0, y1, y2, y3}
	feCondNeg(&out.y, &y, neg)
}

// oddScalarLimbs returns the limbs of k if k is odd and of n - k otherwise,
// with the mask (all ones) telling that the result must be negated.
func oddScalarLimbs(k *Scalar) ([4]uint64, uint64) {
	l := scalarLimbs(k)
	m := -(1 ^ (l[0] & 1))
	var d [4]uint64
	var b uint64
	d[0], b = bits.Sub64(n0, l[0], 0)
	d[1], b = bits.Sub64(n1, l[1], b)
	d[2], b = bits.Sub64(n2, l[2], b)
	d[3], _ = bits.Sub64(n3, l[3], b)
	for i := range l {
		l[i] ^= m & (l[i] ^ d[i])
	}
	return l, m
}

// ScalarMultTable sets v = k·B for the base B of t and returns v, in
// constant time.
func (v *Point) ScalarMultTable(k *Scalar, t *Table) *Point {
	l, negAll := oddScalarLimbs(k)
	var acc projPoint
	var a affinePoint
	idx, neg := digitMasks(oddDigit(l[:], tableDigits-1, tableW, tableDigits))
	lookupAffine8(&a, &t.t[tableDigits-1], idx, neg)
	acc.x, acc.y, acc.z = a.x, a.y, feOne
	for j := tableDigits - 2; j >= 0; j-- {
		idx, neg = digitMasks(oddDigit(l[:], uint(j), tableW, tableDigits))
		lookupAffine8(&a, &t.t[j], idx, neg)
		projAddMixed(&acc, &acc, &a)
	}
	feCondNeg(&acc.y, &acc.y, negAll)
	var id projPoint
	projSetIdentity(&id)
	projSelect(&v.p, &acc, &id, t.identity)
	return v
}

var baseTable struct {
	once sync.Once
	t    *Table
}

// generatorTable returns the table for G, computed on first use.
func generatorTable() *Table {
	baseTable.once.Do(func() {
		baseTable.t = NewTable(NewGeneratorPoint())
	})
	return baseTable.t
}

// ScalarBaseMult sets v = k·G and returns v, in constant time, using a
// precomputed table (built once, on first use).
func (v *Point) ScalarBaseMult(k *Scalar) *Point {
	return v.ScalarMultTable(k, generatorTable())
}

// MultiScalarMult sets v = Σ k_i·p_i in constant time and returns v (Straus'
// method: one shared doubling chain, GLV-split scalars, per-point affine
// tables normalized with a single inversion). Points may be the identity.
// It panics if len(k) != len(p), which is a programming error; the lengths
// are not secret.
func (v *Point) MultiScalarMult(k []*Scalar, p []*Point) *Point {
	if len(k) != len(p) {
		panic("curve: MultiScalarMult with different numbers of scalars and points")
	}
	n := len(k)
	if n == 0 {
		projSetIdentity(&v.p)
		return v
	}
	g := generatorProj()
	halves := make([]glvHalf, 2*n)
	evens := make([]uint64, 2*n)
	proj := make([]projPoint, n*glvEntries)
	for i := range n {
		// Identity points are replaced by G with scalar 0.
		isID := projIsIdentity(&p[i].p)
		var base projPoint
		projSelect(&base, &p[i].p, &g, -isID)
		var keep, ki Scalar
		keep.SetInt(uint32(1 ^ isID))
		ki.Mul2(k[i], &keep)
		halves[2*i], halves[2*i+1] = glvSplit(&ki)
		evens[2*i] = halves[2*i].makeOdd()
		evens[2*i+1] = halves[2*i+1].makeOdd()

		row := proj[i*glvEntries : (i+1)*glvEntries]
		row[0] = base
		var b2 projPoint
		projDouble(&b2, &base)
		for j := 1; j < glvEntries; j++ {
			projAdd(&row[j], &row[j-1], &b2)
		}
	}
	flat := make([]affinePoint, n*glvEntries)
	batchToAffine(flat, proj, make([]fieldElement, len(proj)))
	tables := make([][glvEntries]affinePoint, 2*n)
	for i := range n {
		t1, t2 := &tables[2*i], &tables[2*i+1]
		copy(t1[:], flat[i*glvEntries:(i+1)*glvEntries])
		for j := range t1 {
			feMul(&t2[j].x, &t1[j].x, &betaFE)
			t2[j].y = t1[j].y
		}
	}

	var acc projPoint
	projSetIdentity(&acc)
	var a affinePoint
	for j := glvDigits - 1; j >= 0; j-- {
		if j != glvDigits-1 {
			for range glvW {
				projDouble(&acc, &acc)
			}
		}
		for i := range halves {
			h := &halves[i]
			idx, neg := digitMasks(oddDigit(h.abs[:], uint(j), glvW, glvDigits))
			lookupAffine16(&a, &tables[i], idx, neg^h.neg)
			projAddMixed(&acc, &acc, &a)
		}
	}
	var corr projPoint
	for i := range halves {
		a.x = tables[i][0].x
		feCondNeg(&a.y, &tables[i][0].y, ^halves[i].neg)
		projAddMixed(&corr, &acc, &a)
		projSelect(&acc, &acc, &corr, evens[i])
	}
	v.p = acc
	return v
}
