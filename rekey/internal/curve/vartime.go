package curve

import "sync"

// Variable-time multiplication for PUBLIC scalars only: the running time and
// memory accesses depend on the scalars. Straus/Shamir interleaving of
// width-5 wNAF expansions of GLV half-scalars, with projective tables and
// the complete RCB addition.

const (
	wnafW       = 5
	wnafEntries = 1 << (wnafW - 2) // odd multiples 1P … 15P
	wnafLen     = 132              // |k_i| < 2^130, plus a final carry
)

// wnaf writes the width-wnafW NAF of the 3-limb value k into out (digits
// odd in (-2^(w-1), 2^(w-1)) or zero, at most one non-zero in any w
// consecutive positions) and returns the number of digits used.
func wnaf(out *[wnafLen]int8, k *[3]uint64) int { return wnafWidth(out, k, wnafW) }

// wnafWidth is wnaf for any width 2 ≤ w ≤ 8.
func wnafWidth(out *[wnafLen]int8, k *[3]uint64, w uint) int {
	*out = [wnafLen]int8{}
	var carry uint64
	last := 0
	for i := 0; i < wnafLen; {
		b := bitsAt(k[:], uint(i), 1)
		if b == carry {
			i++
			continue
		}
		word := bitsAt(k[:], uint(i), w) + carry
		d := int64(word)
		if word&(1<<(w-1)) != 0 {
			d -= 1 << w
			carry = 1
		} else {
			carry = 0
		}
		out[i] = int8(d)
		last = i + 1
		i += int(w)
	}
	return last
}

// oddMultiplesProj fills t with (2i+1)·p.
func oddMultiplesProj(t *[wnafEntries]projPoint, p *projPoint) {
	var p2 projPoint
	t[0] = *p
	projDouble(&p2, p)
	for i := 1; i < wnafEntries; i++ {
		projAdd(&t[i], &t[i-1], &p2)
	}
}

// endoTable sets u[i] = φ(t[i]) = (β·X : Y : Z).
func endoTable(u, t *[wnafEntries]projPoint) {
	for i := range t {
		feMul(&u[i].x, &t[i].x, &betaFE)
		u[i].y = t[i].y
		u[i].z = t[i].z
	}
}

// addDigit adds sign(d)·t[|d|/2] to acc for a non-zero odd digit d (flip
// negates the table as a whole).
func addDigit(acc *projPoint, t *[wnafEntries]projPoint, d int8, flip bool) {
	neg := d < 0
	if neg {
		d = -d
	}
	e := &t[d>>1]
	if neg != flip {
		var q projPoint
		q.x = e.x
		feNeg(&q.y, &e.y)
		q.z = e.z
		projAdd(acc, acc, &q)
		return
	}
	projAdd(acc, acc, e)
}

// strausVartime computes Σ ±h_i·T_i over up to four (table, half) pairs.
func strausVartime(out *projPoint, tabs []*[wnafEntries]projPoint, hs []glvHalf) {
	var nafs [4][wnafLen]int8
	top := 0
	for i := range hs {
		if l := wnaf(&nafs[i], &hs[i].abs); l > top {
			top = l
		}
	}
	var acc projPoint
	projSetIdentity(&acc)
	for j := top - 1; j >= 0; j-- {
		if j != top-1 {
			projDouble(&acc, &acc)
		}
		for i := range hs {
			if d := nafs[i][j]; d != 0 {
				addDigit(&acc, tabs[i], d, hs[i].neg != 0)
			}
		}
	}
	*out = acc
}

// ScalarMultVartime sets v = k·p for a PUBLIC k and returns v. Its timing
// depends on k.
func (v *Point) ScalarMultVartime(k *Scalar, p *Point) *Point {
	var t1, t2 [wnafEntries]projPoint
	oddMultiplesProj(&t1, &p.p)
	endoTable(&t2, &t1)
	h1, h2 := glvSplit(k)
	strausVartime(&v.p, []*[wnafEntries]projPoint{&t1, &t2}, []glvHalf{h1, h2})
	return v
}

// ScalarBaseMultVartime sets v = k·G for a PUBLIC k and returns v, using
// the precomputed table of G with direct (secret-dependent) indexing.
func (v *Point) ScalarBaseMultVartime(k *Scalar) *Point {
	t := generatorTable()
	l, negAll := oddScalarLimbs(k)
	var acc projPoint
	var a affinePoint
	for j := tableDigits - 1; j >= 0; j-- {
		d := oddDigit(l[:], uint(j), tableW, tableDigits)
		neg := d < 0
		if neg {
			d = -d
		}
		e := &t.t[j][d>>1]
		a.x = e.x
		if neg {
			feNeg(&a.y, &e.y)
		} else {
			a.y = e.y
		}
		if j == tableDigits-1 {
			acc.x, acc.y, acc.z = a.x, a.y, feOne
			continue
		}
		projAddMixed(&acc, &acc, &a)
	}
	if negAll != 0 {
		feNeg(&acc.y, &acc.y)
	}
	v.p = acc
	return v
}

// DoubleScalarMultVartime sets v = a·p + b·q for PUBLIC a, b and returns v
// (Straus/Shamir with wNAF and GLV: four half-size scalars share one chain
// of about 130 doublings). Its timing depends on a and b.
func (v *Point) DoubleScalarMultVartime(a *Scalar, p *Point, b *Scalar, q *Point) *Point {
	// Signature and proof verification mostly use G as one of the bases:
	// then a wider, precomputed affine table for G replaces one of the
	// per-call tables.
	g := NewGeneratorPoint()
	if p.Equal(g) {
		return v.doubleBaseMultVartime(a, b, q)
	}
	if q.Equal(g) {
		return v.doubleBaseMultVartime(b, a, p)
	}
	var tp, tpe, tq, tqe [wnafEntries]projPoint
	oddMultiplesProj(&tp, &p.p)
	endoTable(&tpe, &tp)
	oddMultiplesProj(&tq, &q.p)
	endoTable(&tqe, &tq)
	a1, a2 := glvSplit(a)
	b1, b2 := glvSplit(b)
	strausVartime(&v.p, []*[wnafEntries]projPoint{&tp, &tpe, &tq, &tqe}, []glvHalf{a1, a2, b1, b2})
	return v
}

// Precomputed width-8 wNAF tables of G and φ(G): the odd multiples
// (2i+1)·G for i < 64, affine, built once on first use.
const (
	genWnafW       = 8
	genWnafEntries = 1 << (genWnafW - 2)
)

var genWnaf struct {
	once   sync.Once
	g, phi [genWnafEntries]affinePoint
}

func generatorWnafTables() (g, phi *[genWnafEntries]affinePoint) {
	genWnaf.once.Do(func() {
		var proj [genWnafEntries]projPoint
		var g2 projPoint
		proj[0] = generatorProj()
		projDouble(&g2, &proj[0])
		for i := 1; i < genWnafEntries; i++ {
			projAdd(&proj[i], &proj[i-1], &g2)
		}
		var scratch [genWnafEntries]fieldElement
		batchToAffine(genWnaf.g[:], proj[:], scratch[:])
		for i := range genWnaf.g {
			feMul(&genWnaf.phi[i].x, &genWnaf.g[i].x, &betaFE)
			genWnaf.phi[i].y = genWnaf.g[i].y
		}
	})
	return &genWnaf.g, &genWnaf.phi
}

// addDigitAffine adds sign(d)·t[|d|/2] to acc (mixed addition).
func addDigitAffine(acc *projPoint, t *[genWnafEntries]affinePoint, d int8, flip bool) {
	neg := d < 0
	if neg {
		d = -d
	}
	e := &t[d>>1]
	if neg != flip {
		var q affinePoint
		q.x = e.x
		feNeg(&q.y, &e.y)
		projAddMixed(acc, acc, &q)
		return
	}
	projAddMixed(acc, acc, e)
}

// doubleBaseMultVartime sets v = a·G + b·q for public a, b.
func (v *Point) doubleBaseMultVartime(a, b *Scalar, q *Point) *Point {
	gt, gphi := generatorWnafTables()
	var tq, tqe [wnafEntries]projPoint
	oddMultiplesProj(&tq, &q.p)
	endoTable(&tqe, &tq)
	a1, a2 := glvSplit(a)
	b1, b2 := glvSplit(b)
	var na1, na2, nb1, nb2 [wnafLen]int8
	top := max(wnafWidth(&na1, &a1.abs, genWnafW), wnafWidth(&na2, &a2.abs, genWnafW),
		wnaf(&nb1, &b1.abs), wnaf(&nb2, &b2.abs))
	var acc projPoint
	projSetIdentity(&acc)
	for j := top - 1; j >= 0; j-- {
		if j != top-1 {
			projDouble(&acc, &acc)
		}
		if d := na1[j]; d != 0 {
			addDigitAffine(&acc, gt, d, a1.neg != 0)
		}
		if d := na2[j]; d != 0 {
			addDigitAffine(&acc, gphi, d, a2.neg != 0)
		}
		if d := nb1[j]; d != 0 {
			addDigit(&acc, &tq, d, b1.neg != 0)
		}
		if d := nb2[j]; d != 0 {
			addDigit(&acc, &tqe, d, b2.neg != 0)
		}
	}
	v.p = acc
	return v
}

// MultiScalarMultVartime sets v = g·G + Σ k[i]·p[i] for PUBLIC scalars and
// returns v: Straus/Shamir over width-5 wNAF expansions of GLV
// half-scalars, all the points sharing one chain of about 130 doublings,
// with affine tables (one field inversion for all of them, then mixed
// additions) and G's precomputed ones. For many points it costs well
// under as many DoubleScalarMultVartime calls, which is what checking
// many capsules at once needs (rekey.ParseCapsules). Its timing depends
// on the scalars.
func (v *Point) MultiScalarMultVartime(g *Scalar, k []*Scalar, p []*Point) *Point {
	if len(k) != len(p) {
		panic("curve: MultiScalarMultVartime needs one scalar per point")
	}
	gt, gphi := generatorWnafTables()
	g1, g2 := glvSplit(g)
	var ng1, ng2 [wnafLen]int8
	top := max(wnafWidth(&ng1, &g1.abs, genWnafW), wnafWidth(&ng2, &g2.abs, genWnafW))
	// The identity adds nothing (and has no affine form): leave it out.
	var live []int
	for i := range p {
		if !p[i].IsIdentity() {
			live = append(live, i)
		}
	}
	proj := make([]projPoint, wnafEntries*len(live))
	for j, i := range live {
		oddMultiplesProj((*[wnafEntries]projPoint)(proj[j*wnafEntries:]), &p[i].p)
	}
	aff := make([]affinePoint, 2*len(proj)) // per point: its odd multiples, then their φ
	scratch := make([]fieldElement, len(proj))
	tabs := make([][2][]affinePoint, len(live))
	for j := range live {
		tabs[j][0] = aff[2*j*wnafEntries : (2*j+1)*wnafEntries]
		tabs[j][1] = aff[(2*j+1)*wnafEntries : (2*j+2)*wnafEntries]
	}
	flat := make([]affinePoint, len(proj))
	batchToAffine(flat, proj, scratch)
	for j := range live {
		for e := range wnafEntries {
			a := flat[j*wnafEntries+e]
			tabs[j][0][e] = a
			feMul(&tabs[j][1][e].x, &a.x, &betaFE)
			tabs[j][1][e].y = a.y
		}
	}
	nafs := make([][2][wnafLen]int8, len(live))
	negs := make([][2]bool, len(live))
	for j, i := range live {
		h1, h2 := glvSplit(k[i])
		top = max(top, wnaf(&nafs[j][0], &h1.abs), wnaf(&nafs[j][1], &h2.abs))
		negs[j] = [2]bool{h1.neg != 0, h2.neg != 0}
	}
	var acc projPoint
	projSetIdentity(&acc)
	for d := top - 1; d >= 0; d-- {
		if d != top-1 {
			projDouble(&acc, &acc)
		}
		if x := ng1[d]; x != 0 {
			addDigitAffine(&acc, gt, x, g1.neg != 0)
		}
		if x := ng2[d]; x != 0 {
			addDigitAffine(&acc, gphi, x, g2.neg != 0)
		}
		for j := range nafs {
			for h := range 2 {
				if x := nafs[j][h][d]; x != 0 {
					addAffine(&acc, tabs[j][h], x, negs[j][h])
				}
			}
		}
	}
	v.p = acc
	return v
}

// addAffine adds sign(d)·t[|d|/2] to acc (mixed addition; flip negates
// the table as a whole).
func addAffine(acc *projPoint, t []affinePoint, d int8, flip bool) {
	neg := d < 0
	if neg {
		d = -d
	}
	e := &t[d>>1]
	if neg != flip {
		q := affinePoint{x: e.x}
		feNeg(&q.y, &e.y)
		projAddMixed(acc, acc, &q)
		return
	}
	projAddMixed(acc, acc, e)
}
