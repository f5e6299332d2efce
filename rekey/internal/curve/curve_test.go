package curve

import (
	"bytes"
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

var bigN, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)
var bigLambda, _ = new(big.Int).SetString("5363ad4cc05c30e0a5261c028812645a122e22ea20816678df02967c1b23bd72", 16)

func scalarFromBig(v *big.Int) *Scalar {
	var b [32]byte
	new(big.Int).Mod(v, bigN).FillBytes(b[:])
	var s Scalar
	s.SetBytes(&b)
	return &s
}

func scalarToBig(s *Scalar) *big.Int {
	b := s.Bytes()
	return new(big.Int).SetBytes(b[:])
}

// edgeScalars returns scalars that stress recoding, GLV and corrections.
func edgeScalars() []*big.Int {
	one := big.NewInt(1)
	nm := func(d int64) *big.Int { return new(big.Int).Sub(bigN, big.NewInt(d)) }
	pow := func(e uint) *big.Int { return new(big.Int).Lsh(one, e) }
	out := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(15), big.NewInt(16),
		big.NewInt(17), big.NewInt(31), big.NewInt(32), big.NewInt(33),
		nm(1), nm(2), nm(3), nm(16), nm(31),
		new(big.Int).Set(bigLambda), new(big.Int).Sub(bigN, bigLambda),
		new(big.Int).Add(bigLambda, one), new(big.Int).Mul(bigLambda, bigLambda),
		new(big.Int).Rsh(bigN, 1), new(big.Int).Add(new(big.Int).Rsh(bigN, 1), one),
		pow(128), new(big.Int).Sub(pow(128), one), pow(129), pow(255), new(big.Int).Sub(pow(255), one),
		pow(252), new(big.Int).Sub(pow(256), pow(200)),
	}
	// Long runs of zero and one bits.
	for _, e := range []uint{5, 63, 64, 65, 127, 130, 200, 250} {
		out = append(out, new(big.Int).Sub(pow(e), one), pow(e), new(big.Int).Add(pow(e), one))
		out = append(out, new(big.Int).Sub(bigN, pow(e)))
	}
	// k = a + b·λ for small a, b (GLV halves at the extremes).
	for _, a := range []int64{0, 1, -1, 2, -2, 1 << 40} {
		for _, b := range []int64{0, 1, -1, 3, -(1 << 50)} {
			v := new(big.Int).Mul(big.NewInt(b), bigLambda)
			v.Add(v, big.NewInt(a))
			out = append(out, v.Mod(v, bigN))
		}
	}
	for _, v := range out {
		v.Mod(v, bigN)
	}
	return out
}

func randomScalars(rng *rand.Rand, n int) []*big.Int {
	out := edgeScalars()
	for range n {
		var b [40]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		v := new(big.Int).SetBytes(b[:])
		if rng.IntN(8) == 0 { // sparse: keep few bits
			v.And(v, new(big.Int).Lsh(big.NewInt(0xFF), uint(rng.IntN(248))))
		}
		out = append(out, v.Mod(v, bigN))
	}
	return out
}

// refMul computes k·P with decred's variable-time arithmetic.
func refMul(k *Scalar, p *Point) []byte {
	enc, err := p.Compressed()
	if err != nil {
		return nil
	}
	pk, err := secp256k1.ParsePubKey(enc[:])
	if err != nil {
		panic(err)
	}
	var j, r secp256k1.JacobianPoint
	pk.AsJacobian(&j)
	secp256k1.ScalarMultNonConst(k, &j, &r)
	if (r.X.IsZero() && r.Y.IsZero()) || r.Z.IsZero() {
		return nil
	}
	r.ToAffine()
	return secp256k1.NewPublicKey(&r.X, &r.Y).SerializeCompressed()
}

func enc(p *Point) []byte {
	e, err := p.Compressed()
	if err != nil {
		return nil
	}
	return e[:]
}

func checkOnCurve(t *testing.T, p *Point) {
	t.Helper()
	// Y²Z = X³ + 7Z³
	var l, r, t1 fieldElement
	feSquare(&l, &p.p.y)
	feMul(&l, &l, &p.p.z)
	feSquare(&r, &p.p.x)
	feMul(&r, &r, &p.p.x)
	feSquare(&t1, &p.p.z)
	feMul(&t1, &t1, &p.p.z)
	feMulSmall(&t1, &t1, 7)
	feAdd(&r, &r, &t1)
	if feEqual(&l, &r) != 1 {
		t.Fatal("point not on curve")
	}
	if p.IsIdentity() && feIsZero(&p.p.x) != 1 {
		t.Fatal("identity with X != 0")
	}
}

func testPoints(rng *rand.Rand, n int) []*Point {
	g := NewGeneratorPoint()
	out := []*Point{g, new(Point).Negate(g), dbl(g)}
	for range n {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		var s Scalar
		s.SetBytes(&b)
		var p Point
		p.ScalarMultVartime(&s, g)
		// Random projective representation.
		var z fieldElement
		z[0] = rng.Uint64() | 1
		z[1] = rng.Uint64()
		feMul(&p.p.x, &p.p.x, &z)
		feMul(&p.p.y, &p.p.y, &z)
		feMul(&p.p.z, &p.p.z, &z)
		out = append(out, &p)
	}
	return out
}

func TestConstants(t *testing.T) {
	if new(big.Int).Exp(bigLambda, big.NewInt(3), bigN).Cmp(big.NewInt(1)) != 0 {
		t.Fatal("λ³ ≠ 1")
	}
	beta := feToBig(&betaFE)
	if new(big.Int).Exp(beta, big.NewInt(3), bigP).Cmp(big.NewInt(1)) != 0 {
		t.Fatal("β³ ≠ 1")
	}
	a1, _ := new(big.Int).SetString("3086d221a7d46bcde86c90e49284eb15", 16)
	b1, _ := new(big.Int).SetString("-e4437ed6010e88286f547fa90abfe4c3", 16)
	a2, _ := new(big.Int).SetString("114ca50f7a8e2f3f657c1108d9d44cfd8", 16)
	b2 := a1
	for _, v := range [][2]*big.Int{{a1, b1}, {a2, b2}} {
		x := new(big.Int).Mul(v[1], bigLambda)
		x.Add(x, v[0]).Mod(x, bigN)
		if x.Sign() != 0 {
			t.Fatal("lattice vector not in kernel")
		}
	}
	limbsBig := func(l [4]uint64) *big.Int {
		v := new(big.Int)
		for i := 3; i >= 0; i-- {
			v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(l[i]))
		}
		return v
	}
	round := func(num, den *big.Int) *big.Int {
		q := new(big.Int).Lsh(num, 1)
		q.Add(q, den)
		return q.Div(q, new(big.Int).Lsh(den, 1))
	}
	two384 := new(big.Int).Lsh(big.NewInt(1), 384)
	if limbsBig(glvG1).Cmp(round(new(big.Int).Mul(two384, b2), bigN)) != 0 {
		t.Fatal("g1")
	}
	if limbsBig(glvG2).Cmp(round(new(big.Int).Mul(two384, new(big.Int).Neg(b1)), bigN)) != 0 {
		t.Fatal("g2")
	}
	if limbsBig([4]uint64{n0, n1, n2, n3}).Cmp(bigN) != 0 ||
		limbsBig([4]uint64{halfN0, halfN1, halfN2, halfN3}).Cmp(new(big.Int).Rsh(bigN, 1)) != 0 {
		t.Fatal("n")
	}
	// φ(G) = λ·G.
	g := NewGeneratorPoint()
	var phi Point
	phi.p = g.p
	feMul(&phi.p.x, &phi.p.x, &betaFE)
	if !bytes.Equal(enc(&phi), refMul(scalarFromBig(bigLambda), g)) {
		t.Fatal("φ(G) ≠ λG")
	}
	// G matches decred.
	var one Scalar
	one.SetInt(1)
	var j secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&one, &j)
	if !bytes.Equal(enc(g), jacEnc(&j)) {
		t.Fatal("generator differs from decred")
	}
}

func TestGLVSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bound := new(big.Int).Lsh(big.NewInt(1), 129)
	for _, kb := range randomScalars(rng, 5000) {
		k := scalarFromBig(kb)
		h1, h2 := glvSplit(k)
		get := func(h glvHalf) *big.Int {
			v := new(big.Int)
			for i := 2; i >= 0; i-- {
				v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(h.abs[i]))
			}
			if v.Cmp(bound) >= 0 {
				t.Fatalf("half of %x too large: %x", kb, v)
			}
			if h.neg != 0 {
				v.Neg(v)
			}
			return v
		}
		k1, k2 := get(h1), get(h2)
		s := new(big.Int).Mul(k2, bigLambda)
		s.Add(s, k1).Mod(s, bigN)
		if s.Cmp(kb) != 0 {
			t.Fatalf("split(%x) = %x + %x·λ", kb, k1, k2)
		}
	}
}

func TestRecoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for it := 0; it < 2000; it++ {
		var l [3]uint64
		l[0] = rng.Uint64() | 1
		l[1] = rng.Uint64()
		l[2] = rng.Uint64() & 3 // < 2^130
		if it == 0 {
			l = [3]uint64{^uint64(0), ^uint64(0), 3}
		}
		if it == 1 {
			l = [3]uint64{1, 0, 0}
		}
		want := new(big.Int)
		for i := 2; i >= 0; i-- {
			want.Lsh(want, 64).Or(want, new(big.Int).SetUint64(l[i]))
		}
		got := new(big.Int)
		for j := glvDigits - 1; j >= 0; j-- {
			d := oddDigit(l[:], uint(j), glvW, glvDigits)
			if d%2 == 0 || d > 31 || d < -31 {
				t.Fatalf("bad digit %d", d)
			}
			got.Lsh(got, glvW).Add(got, big.NewInt(int64(d)))
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("recoding of %x gives %x", want, got)
		}
		var naf [wnafLen]int8
		wnaf(&naf, &l)
		got.SetInt64(0)
		for j := wnafLen - 1; j >= 0; j-- {
			got.Lsh(got, 1).Add(got, big.NewInt(int64(naf[j])))
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("wnaf of %x gives %x", want, got)
		}
		wnafWidth(&naf, &l, genWnafW)
		got.SetInt64(0)
		for j := wnafLen - 1; j >= 0; j-- {
			if d := naf[j]; d%2 == 0 && d != 0 || d > 127 || d < -127 {
				t.Fatalf("bad wnaf8 digit %d", d)
			}
			got.Lsh(got, 1).Add(got, big.NewInt(int64(naf[j])))
		}
		if got.Cmp(want) != 0 {
			t.Fatalf("wnaf8 of %x gives %x", want, got)
		}
	}
}

func TestPointArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pts := testPoints(rng, 200)
	id := NewIdentityPoint()
	two := scalarFromBig(big.NewInt(2))
	three := scalarFromBig(big.NewInt(3))
	for i, p := range pts {
		checkOnCurve(t, p)
		q := pts[(i*7+1)%len(pts)]
		var r, s Point
		// identity laws
		if !r.Add(p, id).Equal(p) || !r.Add(id, p).Equal(p) {
			t.Fatal("P + O ≠ P")
		}
		if !r.Add(id, id).IsIdentity() || !r.Set(dbl(id)).IsIdentity() {
			t.Fatal("O + O ≠ O")
		}
		// P + P = 2P (complete formulas, no special case)
		r.Add(p, p)
		checkOnCurve(t, &r)
		if !bytes.Equal(enc(&r), refMul(two, p)) || !s.Set(dbl(p)).Equal(&r) {
			t.Fatal("P + P ≠ 2P")
		}
		// P + (-P) = O
		if !r.Subtract(p, p).IsIdentity() || !r.Add(p, new(Point).Negate(p)).IsIdentity() {
			t.Fatal("P - P ≠ O")
		}
		// 2P + P = 3P, and addition vs decred
		r.Add(&s, p)
		if !bytes.Equal(enc(&r), refMul(three, p)) {
			t.Fatal("2P + P ≠ 3P")
		}
		r.Add(p, q)
		checkOnCurve(t, &r)
		pj, qj := toJac(p), toJac(q)
		var sj secp256k1.JacobianPoint
		secp256k1.AddNonConst(&pj, &qj, &sj)
		if !bytes.Equal(enc(&r), jacEnc(&sj)) {
			t.Fatal("P + Q differs from decred")
		}
		// mixed addition
		var aff affinePoint
		enc1, _ := q.Compressed()
		var qa Point
		qa.SetBytes(enc1[:])
		aff.x, aff.y = qa.p.x, qa.p.y
		var m projPoint
		projAddMixed(&m, &p.p, &aff)
		if !(&Point{p: m}).Equal(&r) {
			t.Fatal("mixed add")
		}
		projSetIdentity(&m)
		projAddMixed(&m, &m, &aff)
		if !(&Point{p: m}).Equal(q) {
			t.Fatal("O + mixed Q")
		}
		aff.x, aff.y = qa.p.x, qa.p.y
		feNeg(&aff.y, &aff.y)
		projAddMixed(&m, &q.p, &aff)
		if projIsIdentity(&m) != 1 {
			t.Fatal("Q + mixed(-Q)")
		}
		if p.Equal(q) != bytes.Equal(enc(p), enc(q)) {
			t.Fatal("Equal")
		}
		if p.Equal(id) || id.Equal(p) || !id.Equal(NewIdentityPoint()) {
			t.Fatal("Equal identity")
		}
	}
}

func toJac(p *Point) secp256k1.JacobianPoint {
	var j secp256k1.JacobianPoint
	e, err := p.Compressed()
	if err != nil {
		return j
	}
	pk, _ := secp256k1.ParsePubKey(e[:])
	pk.AsJacobian(&j)
	return j
}

func jacEnc(j *secp256k1.JacobianPoint) []byte {
	if (j.X.IsZero() && j.Y.IsZero()) || j.Z.IsZero() {
		return nil
	}
	r := *j
	r.ToAffine()
	return secp256k1.NewPublicKey(&r.X, &r.Y).SerializeCompressed()
}

func TestScalarMult(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	pts := testPoints(rng, 40)
	ks := randomScalars(rng, 1500)
	for i, kb := range ks {
		k := scalarFromBig(kb)
		p := pts[i%len(pts)]
		want := refMul(k, p)
		var r, rv Point
		r.ScalarMult(k, p)
		checkOnCurve(t, &r)
		if !bytes.Equal(enc(&r), want) {
			t.Fatalf("ScalarMult(%x) = %x, want %x", kb, enc(&r), want)
		}
		rv.ScalarMultVartime(k, p)
		if !bytes.Equal(enc(&rv), want) {
			t.Fatalf("ScalarMultVartime(%x) = %x, want %x", kb, enc(&rv), want)
		}
		if !r.Equal(&rv) {
			t.Fatal("Equal")
		}
	}
	// Identity input.
	var r Point
	for _, kb := range edgeScalars() {
		if !r.ScalarMult(scalarFromBig(kb), NewIdentityPoint()).IsIdentity() {
			t.Fatal("k·O ≠ O")
		}
		if !r.ScalarMultVartime(scalarFromBig(kb), NewIdentityPoint()).IsIdentity() {
			t.Fatal("k·O ≠ O (vartime)")
		}
	}
	// Aliasing: v = k·v.
	p := *pts[3]
	k := scalarFromBig(big.NewInt(12345))
	want := refMul(k, &p)
	if !bytes.Equal(enc(p.ScalarMult(k, &p)), want) {
		t.Fatal("aliased ScalarMult")
	}
}

func TestScalarBaseMult(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	g := NewGeneratorPoint()
	for _, kb := range randomScalars(rng, 1500) {
		k := scalarFromBig(kb)
		var j secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(k, &j)
		want := jacEnc(&j)
		var r Point
		r.ScalarBaseMult(k)
		checkOnCurve(t, &r)
		if !bytes.Equal(enc(&r), want) {
			t.Fatalf("ScalarBaseMult(%x) = %x, want %x", kb, enc(&r), want)
		}
		if !bytes.Equal(enc(r.ScalarBaseMultVartime(k)), want) {
			t.Fatalf("ScalarBaseMultVartime(%x)", kb)
		}
		if !bytes.Equal(refMul(k, g), want) {
			t.Fatal("reference mismatch")
		}
	}
}

func TestTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	pts := testPoints(rng, 3)
	ks := randomScalars(rng, 600)
	for _, p := range pts {
		tab := NewTable(p)
		for _, kb := range ks {
			k := scalarFromBig(kb)
			var r Point
			r.ScalarMultTable(k, tab)
			if !bytes.Equal(enc(&r), refMul(k, p)) {
				t.Fatalf("ScalarMultTable(%x)", kb)
			}
		}
	}
	tab := NewTable(NewIdentityPoint())
	var r Point
	for _, kb := range edgeScalars() {
		if !r.ScalarMultTable(scalarFromBig(kb), tab).IsIdentity() {
			t.Fatal("identity table")
		}
	}
}

func TestMultiScalarMult(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	pts := testPoints(rng, 40)
	ks := randomScalars(rng, 200)
	id := NewIdentityPoint()
	for it := 0; it < 120; it++ {
		n := it % 9
		if it == 119 {
			n = 30
		}
		var kk []*Scalar
		var pp []*Point
		want := NewIdentityPoint()
		for i := 0; i < n; i++ {
			k := scalarFromBig(ks[(it*31+i)%len(ks)])
			p := pts[(it*7+i*3)%len(pts)]
			switch (it + i) % 11 {
			case 0:
				p = id
			case 1:
				if i > 0 {
					p = pp[0] // repeated point
				}
			case 2:
				k = new(Scalar)
			}
			kk = append(kk, k)
			pp = append(pp, p)
			var t1 Point
			want.Add(want, t1.ScalarMultVartime(k, p))
		}
		var r Point
		r.MultiScalarMult(kk, pp)
		checkOnCurve(t, &r)
		if !r.Equal(want) {
			t.Fatalf("MultiScalarMult n=%d", n)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on length mismatch")
		}
	}()
	new(Point).MultiScalarMult([]*Scalar{new(Scalar)}, nil)
}

func TestDoubleScalarMultVartime(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	pts := testPoints(rng, 30)
	ks := randomScalars(rng, 800)
	for i := range ks {
		a := scalarFromBig(ks[i])
		b := scalarFromBig(ks[(i*13+5)%len(ks)])
		p := pts[i%len(pts)]
		q := pts[(i*3+1)%len(pts)]
		if i%17 == 0 {
			q = p
		}
		if i%23 == 0 {
			q = NewIdentityPoint()
		}
		pa := toJac(p)
		qa := toJac(q)
		var x, y, s secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(a, &pa, &x)
		if q.IsIdentity() {
			s = x
		} else {
			secp256k1.ScalarMultNonConst(b, &qa, &y)
			secp256k1.AddNonConst(&x, &y, &s)
		}
		var r Point
		r.DoubleScalarMultVartime(a, p, b, q)
		if !bytes.Equal(enc(&r), jacEnc(&s)) {
			t.Fatalf("DoubleScalarMultVartime(%x, %x)", ks[i], ks[(i*13+5)%len(ks)])
		}
	}
	// With G as either base (precomputed-table path).
	g := NewGeneratorPoint()
	for i := 0; i < 600; i++ {
		a := scalarFromBig(ks[i])
		b := scalarFromBig(ks[(i*7+3)%len(ks)])
		q := pts[1+i%(len(pts)-1)]
		var x, y, want Point
		x.ScalarMult(a, g)
		y.ScalarMult(b, q)
		want.Add(&x, &y)
		var r Point
		if !r.DoubleScalarMultVartime(a, g, b, q).Equal(&want) {
			t.Fatalf("DoubleScalarMultVartime(a, G, b, Q) i=%d", i)
		}
		if !r.DoubleScalarMultVartime(b, q, a, g).Equal(&want) {
			t.Fatalf("DoubleScalarMultVartime(b, Q, a, G) i=%d", i)
		}
	}
	// a·P + b·(-P) with a = b gives the identity.
	var r Point
	k := scalarFromBig(ks[7])
	if !r.DoubleScalarMultVartime(k, pts[1], k, new(Point).Negate(pts[1])).IsIdentity() {
		t.Fatal("aP - aP ≠ O")
	}
}

func TestEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	pts := testPoints(rng, 300)
	for _, p := range pts {
		c, err := p.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		j := toJac(p)
		j.ToAffine()
		dk := secp256k1.NewPublicKey(&j.X, &j.Y)
		if !bytes.Equal(c[:], dk.SerializeCompressed()) {
			t.Fatal("compressed differs from decred")
		}
		var q, u Point
		if _, err := q.SetBytes(c[:]); err != nil || !q.Equal(p) {
			t.Fatal("compressed round trip")
		}
		if _, err := u.SetBytes(dk.SerializeUncompressed()); err != nil || !u.Equal(p) {
			t.Fatal("uncompressed round trip")
		}
	}
	batch, err := BatchCompressed(pts)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pts {
		c, _ := p.Compressed()
		if batch[i] != c {
			t.Fatal("BatchCompressed")
		}
	}
	if _, err := BatchCompressed(append(pts[:3:3], NewIdentityPoint())); !errors.Is(err, ErrIdentity) {
		t.Fatal("BatchCompressed identity")
	}
	if b, err := BatchCompressed(nil); err != nil || len(b) != 0 {
		t.Fatal("BatchCompressed empty")
	}
	if _, err := NewIdentityPoint().Compressed(); !errors.Is(err, ErrIdentity) {
		t.Fatal("identity compressed")
	}

	g := NewGeneratorPoint()
	gc, _ := g.Compressed()
	gu := append([]byte{4}, gc[1:]...)
	var yb [32]byte
	feBytes(&yb, &genY)
	gu = append(gu, yb[:]...)
	pBytes := bigP.FillBytes(make([]byte, 32))
	bad := [][]byte{
		nil, {}, {0}, {2}, {4}, gc[:32], append(gc[:], 0),
		append([]byte{5}, gc[1:]...), append([]byte{6}, gu[1:]...), append([]byte{7}, gu[1:]...),
		append([]byte{2}, pBytes...), append([]byte{3}, pBytes...),
		append([]byte{4}, append(pBytes, yb[:]...)...),
		append(append([]byte{4}, gc[1:]...), pBytes...),
		append([]byte{2}, make([]byte, 32)...), // x = 0: 7 is not a square
		make([]byte, 33), make([]byte, 65),
	}
	off := append([]byte{}, gu...)
	off[64] ^= 1
	bad = append(bad, off, gu[:64])
	var x5 fieldElement
	x5[0] = 5 // x = 5: 132 is not a square mod p? check below
	var rhs, y fieldElement
	feSquare(&rhs, &x5)
	feMul(&rhs, &rhs, &x5)
	feAdd(&rhs, &rhs, &curveB)
	if feSqrt(&y, &rhs) == 0 {
		b := make([]byte, 33)
		b[0], b[32] = 2, 5
		bad = append(bad, b)
	}
	for _, b := range bad {
		q := NewGeneratorPoint()
		if r, err := q.SetBytes(b); err == nil || r != nil || !errors.Is(err, ErrInvalidPoint) {
			t.Fatalf("SetBytes(%x) accepted", b)
		}
		if !q.Equal(g) {
			t.Fatal("SetBytes modified v on error")
		}
	}
	var q Point
	if _, err := q.SetBytes(gu); err != nil || !q.Equal(g) {
		t.Fatal("G uncompressed")
	}
	if _, err := q.SetBytes(gc[:]); err != nil || !q.Equal(g) {
		t.Fatal("G compressed")
	}
	c3 := gc
	c3[0] ^= 1
	if _, err := q.SetBytes(c3[:]); err != nil || !q.Equal(new(Point).Negate(g)) {
		t.Fatal("-G compressed")
	}
}

func TestInvertScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, kb := range randomScalars(rng, 300) {
		var r Scalar
		InvertScalar(&r, scalarFromBig(kb))
		want := new(big.Int).ModInverse(kb, bigN)
		if want == nil {
			want = new(big.Int)
		}
		if scalarToBig(&r).Cmp(want) != 0 {
			t.Fatalf("InvertScalar(%x)", kb)
		}
	}
	k := scalarFromBig(big.NewInt(77))
	InvertScalar(k, k)
	k.Mul(scalarFromBig(big.NewInt(77)))
	if !k.Equals(scalarFromBig(big.NewInt(1))) {
		t.Fatal("aliased InvertScalar")
	}
}

func FuzzSetBytes(f *testing.F) {
	g := NewGeneratorPoint()
	gc, _ := g.Compressed()
	f.Add(gc[:])
	f.Add(append([]byte{4}, make([]byte, 64)...))
	f.Add([]byte{2})
	gu := append([]byte{4}, gc[1:]...)
	var yb [32]byte
	feBytes(&yb, &genY)
	f.Add(append(gu, yb[:]...))
	f.Add(append([]byte{3}, bigP.FillBytes(make([]byte, 32))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Point
		r, err := p.SetBytes(b)
		if err != nil {
			if r != nil || !errors.Is(err, ErrInvalidPoint) {
				t.Fatal("bad error result")
			}
			if (len(b) == 33 && (b[0] == 2 || b[0] == 3)) || (len(b) == 65 && b[0] == 4) {
				if _, err2 := secp256k1.ParsePubKey(b); err2 == nil {
					t.Fatal("refused a point decred accepts")
				}
			}
			return
		}
		checkOnCurve(t, &p)
		c, err := p.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 33 && !bytes.Equal(c[:], b) {
			t.Fatal("compressed round trip")
		}
		if len(b) == 65 && !bytes.Equal(c[1:], b[1:33]) {
			t.Fatal("uncompressed round trip")
		}
		if _, err := secp256k1.ParsePubKey(b); err != nil {
			t.Fatal("accepted a point decred refuses")
		}
	})
}

// dbl returns 2p using the doubling formula directly.
func dbl(p *Point) *Point {
	r := new(Point)
	projDouble(&r.p, &p.p)
	return r
}

// ScalarMultPair equals two ScalarMult calls, for random and edge scalars
// and for the identity as the base.
func TestScalarMultPair(t *testing.T) {
	var zero, one, nm1 Scalar
	one.SetInt(1)
	nm1.SetInt(1)
	nm1.Negate()
	p := NewIdentityPoint().ScalarBaseMult(randomScalarForPair(t))
	scalars := []*Scalar{&zero, &one, &nm1}
	for i := 0; i < 20; i++ {
		scalars = append(scalars, randomScalarForPair(t))
	}
	for _, base := range []*Point{p, NewIdentityPoint(), NewGeneratorPoint()} {
		for i := 0; i+1 < len(scalars); i++ {
			var a, b, wa, wb Point
			ScalarMultPair(&a, &b, scalars[i], scalars[i+1], base)
			wa.ScalarMult(scalars[i], base)
			wb.ScalarMult(scalars[i+1], base)
			if !a.Equal(&wa) || !b.Equal(&wb) {
				t.Fatalf("ScalarMultPair differs from ScalarMult at %d", i)
			}
		}
	}
}

func randomScalarForPair(t *testing.T) *Scalar {
	t.Helper()
	var b [32]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	var s Scalar
	s.SetBytes(&b)
	return &s
}

// MultiScalarMultVartime is g·G + Σ k_i·P_i, checked against the
// constant-time ScalarMult and additions, with edge scalars, the
// identity, repeated and opposite points.
func TestMultiScalarMultVartime(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	pts := testPoints(rng, 40)
	ks := append(edgeScalars(), randomScalars(rng, 300)...)
	gen := NewGeneratorPoint()
	for it := 0; it < 150; it++ {
		n := it % 11
		if it >= 140 {
			n = 70 // as many points as a batch of 35 capsules
		}
		g := scalarFromBig(ks[(it*17)%len(ks)])
		want := new(Point).ScalarMult(g, gen)
		var kk []*Scalar
		var pp []*Point
		for i := 0; i < n; i++ {
			k := scalarFromBig(ks[(it*31+i*7)%len(ks)])
			p := pts[(it*7+i*3)%len(pts)]
			switch (it + i) % 13 {
			case 0:
				p = NewIdentityPoint()
			case 1:
				if i > 0 {
					p = new(Point).Negate(pp[0])
				}
			case 2:
				k = new(Scalar)
			case 3:
				p = gen
			}
			kk = append(kk, k)
			pp = append(pp, p)
			want.Add(want, new(Point).ScalarMult(k, p))
		}
		var r Point
		r.MultiScalarMultVartime(g, kk, pp)
		checkOnCurve(t, &r)
		if !r.Equal(want) {
			t.Fatalf("MultiScalarMultVartime n=%d it=%d", n, it)
		}
	}
	// A combination that cancels gives the identity.
	k := scalarFromBig(ks[9])
	var negK Scalar
	negK.Set(k).Negate()
	if !new(Point).MultiScalarMultVartime(new(Scalar), []*Scalar{k, &negK}, []*Point{pts[3], pts[3]}).IsIdentity() {
		t.Fatal("kP - kP ≠ O")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on length mismatch")
		}
	}()
	new(Point).MultiScalarMultVartime(new(Scalar), []*Scalar{new(Scalar)}, nil)
}
