// Package curve is kadre's secp256k1 group arithmetic: points, constant-time
// scalar multiplication for secret scalars and variable-time multiplication
// for public ones.
//
// TEMPORARY: this first version wraps decred's variable-time arithmetic so
// that the protocol layer can be written against the final API. It is
// replaced by a constant-time implementation; nothing here may be used with
// secret scalars until then.
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
	j secp256k1.JacobianPoint
}

// NewIdentityPoint returns the point at infinity.
func NewIdentityPoint() *Point {
	return new(Point)
}

// NewGeneratorPoint returns G.
func NewGeneratorPoint() *Point {
	var k Scalar
	k.SetInt(1)
	p := new(Point)
	secp256k1.ScalarBaseMultNonConst(&k, &p.j)
	return p
}

// Set sets v = u and returns v.
func (v *Point) Set(u *Point) *Point { v.j.Set(&u.j); return v }

// SetBytes decodes a SEC1 compressed (33 bytes, 02/03) or uncompressed
// (65 bytes, 04) point. The identity, hybrid (06/07) and compact (05)
// encodings and points not on the curve are refused with ErrInvalidPoint.
func (v *Point) SetBytes(b []byte) (*Point, error) {
	if len(b) == 0 || (b[0] != 2 && b[0] != 3 && b[0] != 4) {
		return nil, ErrInvalidPoint
	}
	pk, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, ErrInvalidPoint
	}
	pk.AsJacobian(&v.j)
	return v, nil
}

// Compressed returns the 33-byte SEC1 compressed encoding of v.
func (v *Point) Compressed() ([33]byte, error) {
	var out [33]byte
	if v.IsIdentity() {
		return out, ErrIdentity
	}
	a := v.j
	a.ToAffine()
	copy(out[:], secp256k1.NewPublicKey(&a.X, &a.Y).SerializeCompressed())
	return out, nil
}

// IsIdentity reports whether v is the point at infinity.
func (v *Point) IsIdentity() bool {
	return v.j.Z.IsZero() || (v.j.X.IsZero() && v.j.Y.IsZero())
}

// Equal reports whether v and u are the same point.
func (v *Point) Equal(u *Point) bool {
	a, b := v.IsIdentity(), u.IsIdentity()
	if a || b {
		return a == b
	}
	return v.j.EquivalentNonConst(&u.j)
}

// Add sets v = p + q and returns v.
func (v *Point) Add(p, q *Point) *Point {
	var r secp256k1.JacobianPoint
	secp256k1.AddNonConst(&p.j, &q.j, &r)
	v.j.Set(&r)
	return v
}

// Negate sets v = -p and returns v.
func (v *Point) Negate(p *Point) *Point {
	v.j.Set(&p.j)
	v.j.Y.Normalize().Negate(1).Normalize()
	return v
}

// Subtract sets v = p - q and returns v.
func (v *Point) Subtract(p, q *Point) *Point {
	var n Point
	n.Negate(q)
	return v.Add(p, &n)
}

// ScalarMult sets v = k·p and returns v.
func (v *Point) ScalarMult(k *Scalar, p *Point) *Point {
	var r secp256k1.JacobianPoint
	secp256k1.ScalarMultNonConst(k, &p.j, &r)
	v.j.Set(&r)
	return v
}

// ScalarBaseMult sets v = k·G and returns v.
func (v *Point) ScalarBaseMult(k *Scalar) *Point {
	var r secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(k, &r)
	v.j.Set(&r)
	return v
}

// ScalarMultVartime sets v = k·p for a public k and returns v.
func (v *Point) ScalarMultVartime(k *Scalar, p *Point) *Point { return v.ScalarMult(k, p) }

// ScalarBaseMultVartime sets v = k·G for a public k and returns v.
func (v *Point) ScalarBaseMultVartime(k *Scalar) *Point { return v.ScalarBaseMult(k) }

// DoubleScalarMultVartime sets v = a·p + b·q for public a, b and returns v.
func (v *Point) DoubleScalarMultVartime(a *Scalar, p *Point, b *Scalar, q *Point) *Point {
	var x, y Point
	x.ScalarMult(a, p)
	y.ScalarMult(b, q)
	return v.Add(&x, &y)
}

// MultiScalarMult sets v = Σ k_i·p_i in constant time and returns v.
func (v *Point) MultiScalarMult(k []*Scalar, p []*Point) *Point {
	acc := NewIdentityPoint()
	for i := range k {
		var t Point
		t.ScalarMult(k[i], p[i])
		acc.Add(acc, &t)
	}
	return v.Set(acc)
}

// InvertScalar sets out = k^-1 mod n (0 for k = 0) and returns out.
func InvertScalar(out, k *Scalar) *Scalar {
	return out.InverseValNonConst(k)
}
