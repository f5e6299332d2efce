// Package curve is kadre's secp256k1 group arithmetic: points, constant-time
// scalar multiplication for secret scalars and variable-time multiplication
// for public ones.
//
// Field elements are integers mod p = 2^256 - 2^32 - 977 in four 64-bit
// limbs (field.go), weakly reduced to [0, 2^256) between operations. Points
// are kept in homogeneous projective coordinates and combined with the
// complete formulas of Renes, Costello and Batina (ePrint 2015/1060,
// Algorithms 7, 8 and 9 for a = 0), which have no exceptional cases: the
// identity, P + P and P + (-P) need no branches (rcb.go). Scalar
// multiplication uses the GLV endomorphism φ(x, y) = (β·x, y) = λ·(x, y) to
// halve the number of doublings (scalar.go, scalarmult.go). Fixed bases
// (G, and any base given to NewTable) use precomputed radix-16 tables and
// no doublings at all.
//
// # Security
//
// Constant time (no branch and no memory address depends on secret scalars
// or on point coordinates; table lookups read every entry and select with
// masks; conditional negations use masks): the field arithmetic including
// inversion (Fermat) and square root, Add, Subtract, Negate, Equal,
// IsIdentity, ScalarMult, ScalarBaseMult, ScalarMultTable, MultiScalarMult
// and InvertScalar (Fermat, in Montgomery arithmetic). Scalar Add, Mul,
// Negate and Square are decred's and are constant time too. The timing of
// ScalarMult, ScalarBaseMult and InvertScalar was checked statistically with
// scripts/dudect (see TIMING.md); that is evidence, not proof, and it
// depends on the Go compiler keeping the mask arithmetic branch-free.
//
// Not constant time, by design: every function whose name ends in Vartime
// (use them only with public scalars, e.g. to verify signatures and proofs;
// DoubleScalarMultVartime also branches on whether a base is G); whether
// SetBytes accepts an encoding (the arithmetic that decides it is constant
// time, the error return is not); whether Compressed or BatchCompressed is
// given the identity (it returns ErrIdentity); NewTable (its cost is public
// and it branches on whether the base is the identity); and the lengths of
// the slices given to MultiScalarMult and BatchCompressed. The bool results
// of Equal and IsIdentity are computed in constant time, but what the
// caller does with them is up to the caller.
package curve

import (
	"errors"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// Scalar is an integer modulo the group order n. decred's ModNScalar
// arithmetic (Add, Mul, Negate, Square) is constant time; its
// InverseNonConst is not, use InvertScalar instead.
type Scalar = secp256k1.ModNScalar

// ErrInvalidPoint is returned when bytes do not encode a point of the curve
// other than the identity.
var ErrInvalidPoint = errors.New("curve: invalid point encoding")

// ErrIdentity is returned when the identity point would have to be encoded.
var ErrIdentity = errors.New("curve: identity point has no encoding")

// Point is a point of secp256k1. The zero value is not valid; use
// NewIdentityPoint, NewGeneratorPoint or SetBytes.
type Point struct {
	p projPoint
}

// Affine coordinates of the generator G (SEC 2, §2.4.1).
var (
	genX = fieldElement{0x59F2815B16F81798, 0x029BFCDB2DCE28D9, 0x55A06295CE870B07, 0x79BE667EF9DCBBAC}
	genY = fieldElement{0x9C47D08FFB10D4B8, 0xFD17B448A6855419, 0x5DA4FBFC0E1108A8, 0x483ADA7726A3C465}
)

func generatorProj() projPoint {
	return projPoint{x: genX, y: genY, z: feOne}
}

// NewIdentityPoint returns the point at infinity.
func NewIdentityPoint() *Point {
	v := new(Point)
	projSetIdentity(&v.p)
	return v
}

// NewGeneratorPoint returns G.
func NewGeneratorPoint() *Point {
	return &Point{p: generatorProj()}
}

// Set sets v = u and returns v.
func (v *Point) Set(u *Point) *Point { v.p = u.p; return v }

// curveB is b = 7 in y² = x³ + 7.
var curveB = fieldElement{7, 0, 0, 0}

// SetBytes decodes a SEC1 compressed (33 bytes, 02/03) or uncompressed
// (65 bytes, 04) point. The identity, hybrid (06/07) and compact (05)
// encodings, coordinates not below p and points not on the curve are
// refused with ErrInvalidPoint, leaving v unchanged. It never panics.
func (v *Point) SetBytes(b []byte) (*Point, error) {
	var x, y, rhs fieldElement
	switch {
	case len(b) == 33 && (b[0] == 2 || b[0] == 3):
		if feSetBytes(&x, (*[32]byte)(b[1:33])) == 0 {
			return nil, ErrInvalidPoint
		}
		feSquare(&rhs, &x)
		feMul(&rhs, &rhs, &x)
		feAdd(&rhs, &rhs, &curveB)
		if feSqrt(&y, &rhs) == 0 {
			return nil, ErrInvalidPoint
		}
		// y = 0 is impossible (n is odd, so there is no point of order 2).
		feCondNeg(&y, &y, -(feIsOdd(&y) ^ uint64(b[0]&1)))
	case len(b) == 65 && b[0] == 4:
		okX := feSetBytes(&x, (*[32]byte)(b[1:33]))
		okY := feSetBytes(&y, (*[32]byte)(b[33:65]))
		var lhs fieldElement
		feSquare(&lhs, &y)
		feSquare(&rhs, &x)
		feMul(&rhs, &rhs, &x)
		feAdd(&rhs, &rhs, &curveB)
		if okX&okY&feEqual(&lhs, &rhs) == 0 {
			return nil, ErrInvalidPoint
		}
	default:
		return nil, ErrInvalidPoint
	}
	v.p = projPoint{x: x, y: y, z: feOne}
	return v, nil
}

// Compressed returns the 33-byte SEC1 compressed encoding of v, or
// ErrIdentity. The normalization uses one constant-time field inversion.
func (v *Point) Compressed() ([33]byte, error) {
	var out [33]byte
	if v.IsIdentity() {
		return out, ErrIdentity
	}
	var zinv, x, y fieldElement
	feInvert(&zinv, &v.p.z)
	feMul(&x, &v.p.x, &zinv)
	feMul(&y, &v.p.y, &zinv)
	encodeCompressed(&out, &x, &y)
	return out, nil
}

func encodeCompressed(out *[33]byte, x, y *fieldElement) {
	out[0] = 2 | byte(feIsOdd(y))
	feBytes((*[32]byte)(out[1:33]), x)
}

// BatchCompressed returns the compressed encodings of all points in ps,
// normalizing them with a single field inversion (Montgomery's trick). If
// any point is the identity it returns ErrIdentity and no encodings.
func BatchCompressed(ps []*Point) ([][33]byte, error) {
	if len(ps) == 0 {
		return [][33]byte{}, nil
	}
	in := make([]projPoint, len(ps))
	for i, p := range ps {
		if p.IsIdentity() {
			return nil, ErrIdentity
		}
		in[i] = p.p
	}
	aff := make([]affinePoint, len(ps))
	batchToAffine(aff, in, make([]fieldElement, len(ps)))
	out := make([][33]byte, len(ps))
	for i := range aff {
		encodeCompressed(&out[i], &aff[i].x, &aff[i].y)
	}
	return out, nil
}

// IsIdentity reports whether v is the point at infinity, in constant time.
func (v *Point) IsIdentity() bool {
	return projIsIdentity(&v.p) == 1
}

// Equal reports whether v and u are the same point, in constant time:
// X1·Z2 = X2·Z1 and Y1·Z2 = Y2·Z1 (which also handles the identity,
// since curve points with Z = 0 have X = 0 and Y ≠ 0).
func (v *Point) Equal(u *Point) bool {
	var a, b, c, d fieldElement
	feMul(&a, &v.p.x, &u.p.z)
	feMul(&b, &u.p.x, &v.p.z)
	feMul(&c, &v.p.y, &u.p.z)
	feMul(&d, &u.p.y, &v.p.z)
	return feEqual(&a, &b)&feEqual(&c, &d) == 1
}

// Add sets v = p + q and returns v.
func (v *Point) Add(p, q *Point) *Point {
	projAdd(&v.p, &p.p, &q.p)
	return v
}

// Negate sets v = -p and returns v.
func (v *Point) Negate(p *Point) *Point {
	v.p.x = p.p.x
	feNeg(&v.p.y, &p.p.y)
	v.p.z = p.p.z
	return v
}

// Subtract sets v = p - q and returns v.
func (v *Point) Subtract(p, q *Point) *Point {
	var n projPoint
	n.x = q.p.x
	feNeg(&n.y, &q.p.y)
	n.z = q.p.z
	projAdd(&v.p, &p.p, &n)
	return v
}
