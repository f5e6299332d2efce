package rekey

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/kadre/kadre/rekey/internal/curve"
)

// CapsuleFragSize is the length of a serialized cfrag.
const CapsuleFragSize = 381

// CapsuleFrag is a node's re-encryption of a capsule with one kfrag,
// together with a proof that it used the kfrag its owner committed to.
// Make one with ParseCapsuleFrag or VerifiedCapsuleFrag.Unverify; the zero
// value is not a cfrag (its methods answer as for nil, and Verify refuses
// it with ErrInvalidArgument).
type CapsuleFrag struct {
	e1, v1         curve.Point
	e1B, v1B       [33]byte // 02 or 03 first, 00 only in the zero value
	kfragID        [kfragIDSize]byte
	precursor      curve.Point
	precursorB     [33]byte
	e2, v2, u1, u2 curve.Point
	e2B, v2B       [33]byte
	u1B, u2B       [33]byte
	z              curve.Scalar
	kfragSignature Signature
}

// VerifiedCapsuleFrag is a CapsuleFrag whose proof and kfrag signature have
// been checked, or one a node just produced. Only verified cfrags decrypt.
// The zero value carries no cfrag and is refused like nil.
type VerifiedCapsuleFrag struct {
	cf CapsuleFrag
}

// valid reports whether cf is a cfrag, not nil or the zero value.
func (cf *CapsuleFrag) valid() bool { return cf != nil && cf.e1B[0] != 0 }

// valid reports whether vc carries a cfrag, not nil or the zero value.
func (vc *VerifiedCapsuleFrag) valid() bool { return vc != nil && vc.cf.valid() }

// ParseCapsuleFrag parses the 381-byte MessagePack form. Nothing is
// checked beyond the encoding: call Verify before use.
func ParseCapsuleFrag(b []byte) (*CapsuleFrag, error) {
	r := newMPReader(b)
	r.array(5)
	e1, v1, id, prec := r.bin(33), r.bin(33), r.bin(32), r.bin(33)
	r.array(6)
	e2, v2, u1, u2 := r.bin(33), r.bin(33), r.bin(33), r.bin(33)
	z, sig := r.bin(32), r.bin(64)
	if !r.done() {
		return nil, fmt.Errorf("%w: cfrag", ErrInvalidEncoding)
	}
	var cf CapsuleFrag
	points := []struct {
		b []byte
		p *curve.Point
		c *[33]byte
	}{
		{e1, &cf.e1, &cf.e1B}, {v1, &cf.v1, &cf.v1B}, {prec, &cf.precursor, &cf.precursorB},
		{e2, &cf.e2, &cf.e2B}, {v2, &cf.v2, &cf.v2B}, {u1, &cf.u1, &cf.u1B}, {u2, &cf.u2, &cf.u2B},
	}
	for _, x := range points {
		p, err := parsePoint(x.b)
		if err != nil {
			return nil, err
		}
		*x.p, *x.c = *p, [33]byte(x.b)
	}
	copy(cf.kfragID[:], id)
	if cf.z.SetByteSlice(z) {
		return nil, fmt.Errorf("%w: cfrag scalar out of range", ErrInvalidEncoding)
	}
	s, err := ParseSignature(sig)
	if err != nil {
		return nil, err
	}
	cf.kfragSignature = *s
	return &cf, nil
}

// Bytes returns the canonical 381-byte MessagePack encoding, or nil for a
// nil or zero-value CapsuleFrag (which ParseCapsuleFrag refuses).
func (cf *CapsuleFrag) Bytes() []byte {
	if !cf.valid() {
		return nil
	}
	w := mpWriter{b: make([]byte, 0, CapsuleFragSize)}
	w.array(5)
	w.bin(cf.e1B[:])
	w.bin(cf.v1B[:])
	w.bin(cf.kfragID[:])
	w.bin(cf.precursorB[:])
	w.array(6)
	w.bin(cf.e2B[:])
	w.bin(cf.v2B[:])
	w.bin(cf.u1B[:])
	w.bin(cf.u2B[:])
	zb := cf.z.Bytes()
	w.bin(zb[:])
	w.bin(cf.kfragSignature.Bytes())
	return w.b
}

// KFragID returns the identifier of the kfrag that produced the cfrag, or
// all zeros for a nil or zero-value CapsuleFrag.
func (cf *CapsuleFrag) KFragID() [32]byte {
	if !cf.valid() {
		return [32]byte{}
	}
	return cf.kfragID
}

// Equal reports whether two cfrags are the same. A nil or zero-value cfrag
// equals no cfrag, not even another nil or zero one.
func (cf *CapsuleFrag) Equal(o *CapsuleFrag) bool {
	return cf.valid() && o.valid() && bytes.Equal(cf.Bytes(), o.Bytes())
}

// proofChallenge is h = H2S("CFRAG_VERIFICATION", E, e1, e2, V, v1, v2, U,
// u1, u2).
func (cf *CapsuleFrag) proofChallenge(c *Capsule) curve.Scalar {
	return hashToScalar(dstCfragVerification, c.eb[:], cf.e1B[:], cf.e2B[:],
		c.vb[:], cf.v1B[:], cf.v2B[:], params().uBytes[:], cf.u1B[:], cf.u2B[:])
}

// Verify checks the owner's signature of the kfrag the cfrag was made with
// (over both the delegating and the receiving key) and the proof that the
// cfrag re-encrypts capsule with that kfrag. Every argument is required: a
// nil or zero-value one, or receiver, is refused with ErrInvalidArgument.
// Variable time: every input is public.
func (cf *CapsuleFrag) Verify(c *Capsule, verifyingPK, delegatingPK, receivingPK *PublicKey) (*VerifiedCapsuleFrag, error) {
	switch {
	case !cf.valid():
		return nil, errInvalid("cfrag")
	case !c.valid():
		return nil, errInvalid("capsule")
	case !verifyingPK.valid():
		return nil, errInvalid("verifying key")
	case !delegatingPK.valid():
		return nil, errInvalid("delegating key")
	case !receivingPK.valid():
		return nil, errInvalid("receiving key")
	}
	msg := kfragMessage(&cf.kfragID, &cf.u1B, &cf.precursorB, delegatingPK, receivingPK)
	if !cf.kfragSignature.Verify(verifyingPK, msg) {
		return nil, ErrVerification
	}
	h := cf.proofChallenge(c)
	h.Negate()
	// z·X − h·x1 must equal x2 for (X, x1, x2) = (E, e1, e2), (V, v1, v2)
	// and (U, u1, u2).
	checks := []struct{ base, x1, x2 *curve.Point }{
		{&c.e, &cf.e1, &cf.e2}, {&c.v, &cf.v1, &cf.v2}, {&params().u, &cf.u1, &cf.u2},
	}
	for _, chk := range checks {
		var lhs curve.Point
		lhs.DoubleScalarMultVartime(&cf.z, chk.base, &h, chk.x1)
		if !lhs.Equal(chk.x2) {
			return nil, ErrVerification
		}
	}
	return &VerifiedCapsuleFrag{cf: *cf}, nil
}

// Bytes returns the canonical encoding, the same as the unverified cfrag's,
// or nil for a nil or zero-value VerifiedCapsuleFrag.
func (vc *VerifiedCapsuleFrag) Bytes() []byte {
	if !vc.valid() {
		return nil
	}
	return vc.cf.Bytes()
}

// Unverify returns the cfrag as something to send to a recipient, or nil
// for a nil or zero-value VerifiedCapsuleFrag.
func (vc *VerifiedCapsuleFrag) Unverify() *CapsuleFrag {
	if !vc.valid() {
		return nil
	}
	cf := vc.cf
	return &cf
}

// Equal reports whether two verified cfrags are the same. A nil or
// zero-value cfrag equals no cfrag, not even another nil or zero one.
func (vc *VerifiedCapsuleFrag) Equal(o *VerifiedCapsuleFrag) bool {
	return vc.valid() && o.valid() && vc.cf.Equal(&o.cf)
}

// Reencrypt transforms capsule with a verified kfrag: e1 = rk·E, v1 = rk·V,
// with a proof of correctness, all in constant time in the kfrag key and
// the proof nonce. A nil or zero-value capsule or kfrag is refused with
// ErrInvalidArgument; the only other failure is crypto/rand's.
func Reencrypt(c *Capsule, kfrag *VerifiedKeyFrag) (*VerifiedCapsuleFrag, error) {
	return ReencryptWithRand(rand.Reader, c, kfrag)
}

// ReencryptWithRand is Reencrypt with the proof nonce drawn from rnd.
func ReencryptWithRand(rnd io.Reader, c *Capsule, kfrag *VerifiedKeyFrag) (*VerifiedCapsuleFrag, error) {
	switch {
	case rnd == nil:
		return nil, errNilReader
	case !c.valid():
		return nil, errInvalid("capsule")
	case !kfrag.valid():
		return nil, errInvalid("kfrag")
	}
	kf := &kfrag.kf
	t, err := randomNonZeroScalar(rnd)
	if err != nil {
		return nil, err
	}
	defer t.Zero()
	vc := &VerifiedCapsuleFrag{}
	cf := &vc.cf
	curve.ScalarMultPair(&cf.e1, &cf.e2, &kf.key, &t, &c.e)
	curve.ScalarMultPair(&cf.v1, &cf.v2, &kf.key, &t, &c.v)
	cf.u2.ScalarMultTable(&t, params().uTable)
	cf.u1, cf.u1B = kf.commitment, kf.commitmentB
	enc, err := curve.BatchCompressed([]*curve.Point{&cf.e1, &cf.v1, &cf.e2, &cf.v2, &cf.u2})
	if err != nil {
		// Only a zero kfrag key (a kfrag no honest owner makes) gets here.
		return nil, fmt.Errorf("rekey: failed to re-encrypt: %w", err)
	}
	cf.e1B, cf.v1B, cf.e2B, cf.v2B, cf.u2B = enc[0], enc[1], enc[2], enc[3], enc[4]
	cf.kfragID = kf.id
	cf.precursor, cf.precursorB = kf.precursor, kf.precursorB
	h := cf.proofChallenge(c)
	cf.z.Mul2(&kf.key, &h).Add(&t)
	cf.kfragSignature = kf.sigReceiver
	return vc, nil
}

// Errors of DecryptReencrypted that concern the set of cfrags given.
var (
	ErrNoCapsuleFrags         = errors.New("rekey: no cfrags given")
	ErrMismatchedCapsuleFrags = errors.New("rekey: cfrags come from different kfrag sets")
	ErrRepeatingCapsuleFrags  = errors.New("rekey: some cfrags are repeated")
)

// DecryptReencrypted combines at least threshold verified cfrags of one
// kfrag set and opens ct with the recipient's secret key. delegatingPK is
// the key the capsule was made for. Everything derived from the recipient's
// Diffie-Hellman point is handled in constant time. A nil or zero-value
// key, capsule or cfrag is refused with ErrInvalidArgument.
func DecryptReencrypted(receivingSK *SecretKey, delegatingPK *PublicKey, c *Capsule, cfrags []*VerifiedCapsuleFrag, ct []byte) ([]byte, error) {
	switch {
	case !receivingSK.valid():
		return nil, errInvalid("receiving secret key")
	case !delegatingPK.valid():
		return nil, errInvalid("delegating key")
	case !c.valid():
		return nil, errInvalid("capsule")
	case len(cfrags) == 0:
		return nil, ErrNoCapsuleFrags
	}
	for i, vc := range cfrags {
		if !vc.valid() {
			return nil, errInvalid(fmt.Sprintf("cfrag %d", i))
		}
	}
	first := &cfrags[0].cf
	for _, vc := range cfrags[1:] {
		if vc.cf.precursorB != first.precursorB {
			return nil, ErrMismatchedCapsuleFrags
		}
	}
	var dh curve.Point
	dh.ScalarMult(&receivingSK.s, &first.precursor)
	dhB, err := dh.Compressed()
	if err != nil {
		return nil, ErrDecryption
	}
	pkB := receivingSK.pk.b
	k := len(cfrags)
	xs := make([]curve.Scalar, k)
	for i, vc := range cfrags {
		xs[i] = hashToScalar(dstPolynomialArg, first.precursorB[:], pkB[:], dhB[:], vc.cf.kfragID[:])
	}
	lambda, err := lagrangeAtZero(xs)
	if err != nil {
		return nil, err
	}
	// With d = H(precursor, pkB, dh), the owner's c_0 = skA/d, so
	// d·Σλ_i·e1_i = skA·E and d·Σλ_i·v1_i = skA·V.
	d := hashToScalar(dstSharedSecret, first.precursorB[:], pkB[:], dhB[:])
	scalars := make([]*curve.Scalar, k)
	e1s := make([]*curve.Point, k)
	v1s := make([]*curve.Point, k)
	for i, vc := range cfrags {
		lambda[i].Mul(&d)
		scalars[i] = &lambda[i]
		e1s[i], v1s[i] = &vc.cf.e1, &vc.cf.v1
	}
	var skAE, skAV curve.Point
	skAE.MultiScalarMult(scalars, e1s)
	skAV.MultiScalarMult(scalars, v1s)
	// skA·(h·E + V) = skA·s·G = s·pkA holds only if the cfrags combine to
	// this capsule's key.
	h := hashToScalar(dstCapsulePoints, c.eb[:], c.vb[:])
	var lhs, rhs curve.Point
	lhs.ScalarMult(&h, &skAE).Add(&lhs, &skAV)
	rhs.ScalarMultVartime(&c.s, &delegatingPK.p)
	if !lhs.Equal(&rhs) {
		return nil, ErrDecryption
	}
	var shared curve.Point
	shared.Add(&skAE, &skAV)
	keySeed, err := shared.Compressed()
	if err != nil {
		return nil, ErrDecryption
	}
	return demDecrypt(&keySeed, ct, c.simpleBytes())
}

// lagrangeAtZero returns λ_i = Π_{j≠i} x_j / (x_j − x_i) with one
// constant-time inversion for all denominators.
func lagrangeAtZero(xs []curve.Scalar) ([]curve.Scalar, error) {
	k := len(xs)
	num := make([]curve.Scalar, k)
	den := make([]curve.Scalar, k)
	for i := range xs {
		num[i].SetInt(1)
		den[i].SetInt(1)
		for j := range xs {
			if j == i {
				continue
			}
			var diff curve.Scalar
			diff.NegateVal(&xs[i]).Add(&xs[j])
			num[i].Mul(&xs[j])
			den[i].Mul(&diff)
		}
	}
	// Montgomery's trick: invert the product, then peel off each factor.
	prefix := make([]curve.Scalar, k)
	var acc curve.Scalar
	acc.SetInt(1)
	for i := range den {
		prefix[i].Set(&acc)
		acc.Mul(&den[i])
	}
	if acc.IsZero() {
		return nil, ErrRepeatingCapsuleFrags
	}
	var inv curve.Scalar
	curve.InvertScalar(&inv, &acc)
	for i := k - 1; i >= 0; i-- {
		var di curve.Scalar
		di.Mul2(&inv, &prefix[i])
		inv.Mul(&den[i])
		num[i].Mul(&di)
	}
	return num, nil
}
