package curve

import (
	"encoding/binary"
	"math/bits"
)

// Group order n and constants of the GLV endomorphism φ(x, y) = (β·x, y) =
// λ·(x, y), in little-endian 64-bit limbs. λ³ ≡ 1 mod n, β³ ≡ 1 mod p; the
// lattice basis v1 = (a1, b1), v2 = (a2, b2) of {(x, y) : x + y·λ ≡ 0 mod n}
// has a1 = b2 = 0x3086d221a7d46bcde86c90e49284eb15,
// b1 = -0xe4437ed6010e88286f547fa90abfe4c3,
// a2 = 0x114ca50f7a8e2f3f657c1108d9d44cfd8, and a1·b2 - a2·b1 = n
// (Gallant–Lambert–Vanstone, CRYPTO 2001). TestConstants rederives all of
// them with math/big.
const (
	n0 = 0xBFD25E8CD0364141
	n1 = 0xBAAEDCE6AF48A03B
	n2 = 0xFFFFFFFFFFFFFFFE
	n3 = 0xFFFFFFFFFFFFFFFF

	halfN0 = 0xDFE92F46681B20A0
	halfN1 = 0x5D576E7357A4501D
	halfN2 = 0xFFFFFFFFFFFFFFFF
	halfN3 = 0x7FFFFFFFFFFFFFFF
)

var (
	// betaFE = β, the cube root of unity mod p with φ(P) = λ·P.
	betaFE = fieldElement{0xC1396C28719501EE, 0x9CF0497512F58995, 0x6E64479EAC3434E9, 0x7AE96A2B657C0710}
)

// Limbs of g1 = round(2^384·b2/n) and g2 = round(2^384·(-b1)/n), used to
// compute c1 = round(k·b2/n) and c2 = round(-k·b1/n) without division.
var (
	glvG1 = [4]uint64{0xE893209A45DBB031, 0x3DAA8A1471E8CA7F, 0xE86C90E49284EB15, 0x3086D221A7D46BCD}
	glvG2 = [4]uint64{0x1571B4AE8AC47F71, 0x221208AC9DF506C6, 0x6F547FA90ABFE4C4, 0xE4437ED6010E8828}
)

// scalarFromLimbs returns the scalar with the given little-endian limbs
// (which must be < n).
func scalarFromLimbs(l [4]uint64) Scalar {
	var b [32]byte
	binary.BigEndian.PutUint64(b[0:8], l[3])
	binary.BigEndian.PutUint64(b[8:16], l[2])
	binary.BigEndian.PutUint64(b[16:24], l[1])
	binary.BigEndian.PutUint64(b[24:32], l[0])
	var s Scalar
	s.SetBytes(&b)
	return s
}

// scalarLimbs returns the little-endian limbs of k (in [0, n)).
func scalarLimbs(k *Scalar) [4]uint64 {
	b := k.Bytes()
	return [4]uint64{
		binary.BigEndian.Uint64(b[24:32]),
		binary.BigEndian.Uint64(b[16:24]),
		binary.BigEndian.Uint64(b[8:16]),
		binary.BigEndian.Uint64(b[0:8]),
	}
}

// mulShift384Round returns round(a·g / 2^384) for a < n and g < 2^256, in
// constant time. The result is below 2^128, hence two limbs.
func mulShift384Round(a, g *[4]uint64) (lo, hi uint64) {
	var r [8]uint64
	for i := 0; i < 4; i++ {
		var carry uint64
		for j := 0; j < 4; j++ {
			h, l := bits.Mul64(a[i], g[j])
			var c uint64
			l, c = bits.Add64(l, r[i+j], 0)
			h += c
			l, c = bits.Add64(l, carry, 0)
			h += c
			r[i+j] = l
			carry = h
		}
		r[i+4] = carry
	}
	// Bit 383 is the rounding bit.
	var c uint64
	lo, c = bits.Add64(r[6], r[5]>>63, 0)
	hi = r[7] + c
	return lo, hi
}

// glvHalf is one half of a GLV decomposition: |k_i| in three limbs (it is
// below 2^129) and neg = all ones when k_i is negative.
type glvHalf struct {
	abs [3]uint64
	neg uint64
}

// absHalf converts s ≡ ±small mod n (s < n, in limbs) into its absolute
// value and sign, in constant time: s > n/2 means s = n - |s|.
func absHalf(l *[4]uint64) glvHalf {
	// halfN - l borrows exactly when l > n/2.
	_, b := bits.Sub64(halfN0, l[0], 0)
	_, b = bits.Sub64(halfN1, l[1], b)
	_, b = bits.Sub64(halfN2, l[2], b)
	_, b = bits.Sub64(halfN3, l[3], b)
	m := -b
	d0, c := bits.Sub64(n0, l[0], 0)
	d1, c := bits.Sub64(n1, l[1], c)
	d2, _ := bits.Sub64(n2, l[2], c)
	var h glvHalf
	h.abs[0] = l[0] ^ (m & (l[0] ^ d0))
	h.abs[1] = l[1] ^ (m & (l[1] ^ d1))
	h.abs[2] = l[2] ^ (m & (l[2] ^ d2))
	h.neg = m
	return h
}

// addModN sets z = x + y mod n for x, y < n, in constant time.
func addModN(z, x, y *[4]uint64) {
	s0, c := bits.Add64(x[0], y[0], 0)
	s1, c := bits.Add64(x[1], y[1], c)
	s2, c := bits.Add64(x[2], y[2], c)
	s3, c := bits.Add64(x[3], y[3], c)
	t0, b := bits.Sub64(s0, n0, 0)
	t1, b := bits.Sub64(s1, n1, b)
	t2, b := bits.Sub64(s2, n2, b)
	t3, b := bits.Sub64(s3, n3, b)
	_, b = bits.Sub64(c, 0, b)
	m := -b // all ones: x + y < n, keep s
	z[0] = t0 ^ (m & (t0 ^ s0))
	z[1] = t1 ^ (m & (t1 ^ s1))
	z[2] = t2 ^ (m & (t2 ^ s2))
	z[3] = t3 ^ (m & (t3 ^ s3))
}

// Constants of glvSplit multiplied by R = 2^256 mod n, so that one
// Montgomery multiplication montMul(a, cR) = a·c mod n needs no conversion:
// -b1, -b2 and -λ.
var (
	glvMinusB1R     = [4]uint64{0xC50468D00AD9263C, 0x1B1C8205FAA6ED42, 0x1571B4AE8AC47F71, 0x221208AC9DF506C6}
	glvMinusB2R     = [4]uint64{0x0CAC5E506A144696, 0x1E8A8DC5F3BA5939, 0x176CDF65BA244FCE, 0xC25575EB8E173580}
	glvMinusLambdaR = [4]uint64{0xCF54734F06A3D4A3, 0x8E1AF5392B820BEE, 0x8C5699F9AD96826D, 0xACD7BFE87AA729C6}
)

// glvSplit decomposes k = k1 + k2·λ mod n with |k1|, |k2| < 2^129, in
// constant time (GLV 2001, §4 with Babai rounding done by multiplication
// with precomputed g1, g2):
//
//	c1 = round(k·b2/n), c2 = round(-k·b1/n)
//	k2 = -c1·b1 - c2·b2,  k1 = k - k2·λ.
func glvSplit(k *Scalar) (h1, h2 glvHalf) {
	kl := scalarLimbs(k)
	var c1, c2 [4]uint64
	c1[0], c1[1] = mulShift384Round(&kl, &glvG1)
	c2[0], c2[1] = mulShift384Round(&kl, &glvG2)
	var k1, k2, t [4]uint64
	montMul(&k2, &c1, &glvMinusB1R)
	montMul(&t, &c2, &glvMinusB2R)
	addModN(&k2, &k2, &t)
	montMul(&t, &k2, &glvMinusLambdaR)
	addModN(&k1, &kl, &t)
	return absHalf(&k1), absHalf(&k2)
}

// makeOdd adds 1 to an even h.abs in constant time and returns the mask
// (all ones) of whether it did; the caller subtracts the extra point.
func (h *glvHalf) makeOdd() uint64 {
	e := 1 ^ (h.abs[0] & 1)
	var c uint64
	h.abs[0], c = bits.Add64(h.abs[0], e, 0)
	h.abs[1], c = bits.Add64(h.abs[1], 0, c)
	h.abs[2], _ = bits.Add64(h.abs[2], 0, c)
	return -e
}

// Signed odd-digit fixed-window recoding (Joye–Tunstall 2009, "Exponent
// recoding and regular exponentiation algorithms", and Okeya–Takagi): an
// odd k < 2^(w·m) equals Σ_{j<m} d_j·2^(w·j) with every d_j odd in
// [-(2^w-1), 2^w-1]. With k_0 = k, d_j = (k_j mod 2^(w+1)) - 2^w and
// k_{j+1} = (k_j - d_j)/2^w one gets k_j = 2·⌊k/2^(w·j+1)⌋ + 1, so
//
//	d_j = 2·(bits w·j+1 … w·j+w of k) + 1 - 2^w   for j < m-1,
//	d_{m-1} = 2·⌊k / 2^(w·(m-1)+1)⌋ + 1           (positive),
//
// which needs only bit extraction at public positions: no carries, no
// secret-dependent branches. No digit is zero, so table lookups never need
// the identity, which affine tables cannot hold.

// bitsAt returns w bits of the little-endian number l starting at bit pos
// (pos and w are public; bits past the end read as zero).
func bitsAt(l []uint64, pos, w uint) uint64 {
	i := pos / 64
	s := pos % 64
	var v uint64
	if i < uint(len(l)) {
		v = l[i] >> s
		if s+w > 64 && i+1 < uint(len(l)) {
			v |= l[i+1] << (64 - s)
		}
	}
	return v & (1<<w - 1)
}

// oddDigit returns digit j of the recoding of odd k in width w with m
// digits, as a signed integer.
func oddDigit(l []uint64, j, w, m uint) int32 {
	if j == m-1 {
		// Top digit: everything above bit w·(m-1).
		return int32(2*bitsAt(l, w*j+1, w) + 1)
	}
	return int32(2*bitsAt(l, w*j+1, w)+1) - int32(1<<w)
}
