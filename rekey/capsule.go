package rekey

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/kadre/kadre/rekey/internal/curve"
)

// CapsuleSize is the length of a serialized capsule.
const CapsuleSize = 105

// Capsule is Umbral's key encapsulation: E = r·G, V = u·G and
// s = u + r·H(E, V), which anyone can check (s·G = V + h·E). Make one with
// Encrypt or ParseCapsule; the zero value is not a capsule (its methods
// answer as for nil, and every function refuses it with
// ErrInvalidArgument).
type Capsule struct {
	e, v   curve.Point
	eb, vb [33]byte // 02 or 03 first, 00 only in the zero value
	s      curve.Scalar
}

// valid reports whether c is a capsule, not nil or the zero value.
func (c *Capsule) valid() bool { return c != nil && c.eb[0] != 0 }

// ParseCapsule parses the 105-byte MessagePack form and runs the capsule's
// self-check, as the reference does.
func ParseCapsule(b []byte) (*Capsule, error) {
	c, err := parseCapsule(b)
	if err != nil {
		return nil, err
	}
	if !c.verify() {
		return nil, errSelfCheck
	}
	return c, nil
}

var errSelfCheck = fmt.Errorf("%w: capsule self-check failed", ErrInvalidEncoding)

// ParseCapsules parses many capsules and runs their self-checks together:
// one random linear combination of the checks, Σ r_i·(s_i·G − h_i·E_i −
// V_i) = O with independent random r_i below 2^126, in one multi-scalar
// multiplication, which costs about half of the checks one by one. A
// batch with an invalid capsule passes with probability below 2^-125;
// when the combination fails, each capsule is checked alone, so that the
// answer is exactly ParseCapsule's for each: caps[i] or errs[i].
func ParseCapsules(bs [][]byte) (caps []*Capsule, errs []error) {
	caps, errs = make([]*Capsule, len(bs)), make([]error, len(bs))
	var parsed []*Capsule
	var at []int
	for i, b := range bs {
		c, err := parseCapsule(b)
		if err != nil {
			errs[i] = err
			continue
		}
		parsed, at = append(parsed, c), append(at, i)
	}
	if len(parsed) > 1 && verifyCapsules(parsed) {
		for k, i := range at {
			caps[i] = parsed[k]
		}
		return caps, errs
	}
	for k, i := range at {
		if parsed[k].verify() {
			caps[i] = parsed[k]
		} else {
			errs[i] = errSelfCheck
		}
	}
	return caps, errs
}

// verifyCapsules checks the capsules' self-checks in one random linear
// combination (public values only: variable time). The coefficients are
// below 2^126, so that each r_i·(−V_i) costs half of a full-size scalar's
// multiplication (a GLV split leaves it whole); the chance that a batch
// with an invalid capsule passes stays below 2^-125.
func verifyCapsules(cs []*Capsule) bool {
	r := make([]byte, 16*len(cs))
	if _, err := rand.Read(r); err != nil {
		return false // then one at a time
	}
	var g curve.Scalar
	ks := make([]curve.Scalar, 2*len(cs))
	kp := make([]*curve.Scalar, 2*len(cs))
	ps := make([]*curve.Point, 2*len(cs))
	negV := make([]curve.Point, len(cs))
	for i, c := range cs {
		b := r[16*i : 16*i+16]
		b[0] &= 0x3f // r_i < 2^126
		var ri, t curve.Scalar
		ri.SetByteSlice(b)
		if ri.IsZero() {
			ri.SetInt(1)
		}
		g.Add(t.Mul2(&ri, &c.s))
		h := hashToScalar(dstCapsulePoints, c.eb[:], c.vb[:])
		ks[2*i].Mul2(&ri, &h).Negate()
		ks[2*i+1].Set(&ri)
		negV[i].Negate(&c.v)
		kp[2*i], kp[2*i+1] = &ks[2*i], &ks[2*i+1]
		ps[2*i], ps[2*i+1] = &c.e, &negV[i]
	}
	var sum curve.Point
	return sum.MultiScalarMultVartime(&g, kp, ps).IsIdentity()
}

// parseCapsule parses a capsule without its self-check.
func parseCapsule(b []byte) (*Capsule, error) {
	r := newMPReader(b)
	r.array(3)
	eb, vb, sb := r.bin(33), r.bin(33), r.bin(32)
	if !r.done() {
		return nil, fmt.Errorf("%w: capsule", ErrInvalidEncoding)
	}
	var c Capsule
	e, err := parsePoint(eb)
	if err != nil {
		return nil, err
	}
	v, err := parsePoint(vb)
	if err != nil {
		return nil, err
	}
	c.e, c.v = *e, *v
	copy(c.eb[:], eb)
	copy(c.vb[:], vb)
	if c.s.SetByteSlice(sb) {
		return nil, fmt.Errorf("%w: capsule scalar out of range", ErrInvalidEncoding)
	}
	return &c, nil
}

// verify checks s·G == V + h·E with public values.
func (c *Capsule) verify() bool {
	h := hashToScalar(dstCapsulePoints, c.eb[:], c.vb[:])
	h.Negate()
	var lhs curve.Point
	lhs.DoubleScalarMultVartime(&c.s, &params().g, &h, &c.e) // s·G − h·E
	return lhs.Equal(&c.v)
}

// Bytes returns the canonical 105-byte MessagePack encoding, or nil for a
// nil or zero-value Capsule (which ParseCapsule refuses).
func (c *Capsule) Bytes() []byte {
	if !c.valid() {
		return nil
	}
	w := mpWriter{b: make([]byte, 0, CapsuleSize)}
	w.array(3)
	w.bin(c.eb[:])
	w.bin(c.vb[:])
	sb := c.s.Bytes()
	w.bin(sb[:])
	return w.b
}

// simpleBytes is E ‖ V ‖ s (98 bytes), the DEM's associated data.
func (c *Capsule) simpleBytes() []byte {
	out := make([]byte, 0, 98)
	out = append(out, c.eb[:]...)
	out = append(out, c.vb[:]...)
	sb := c.s.Bytes()
	return append(out, sb[:]...)
}

// Equal reports whether two capsules are the same. A nil or zero-value
// capsule equals no capsule, not even another nil or zero one.
func (c *Capsule) Equal(o *Capsule) bool {
	return c.valid() && o.valid() && c.eb == o.eb && c.vb == o.vb && c.s.Equals(&o.s)
}

// Encrypt encapsulates a fresh key to pk and encrypts pt under it; the
// ciphertext is nonce ‖ XChaCha20-Poly1305 ‖ tag, len(pt)+40 bytes. A nil
// or zero-value pk is refused with ErrInvalidArgument.
func Encrypt(pk *PublicKey, pt []byte) (*Capsule, []byte, error) {
	return EncryptWithRand(rand.Reader, pk, pt)
}

// EncryptWithRand is Encrypt with randomness from r.
func EncryptWithRand(r io.Reader, pk *PublicKey, pt []byte) (*Capsule, []byte, error) {
	if r == nil {
		return nil, nil, errNilReader
	}
	if !pk.valid() {
		return nil, nil, errInvalid("public key")
	}
	c, keySeed, err := encapsulate(r, pk)
	if err != nil {
		return nil, nil, err
	}
	ct, err := demEncrypt(r, keySeed, pt, c.simpleBytes())
	if err != nil {
		return nil, nil, err
	}
	return c, ct, nil
}

func encapsulate(rnd io.Reader, pk *PublicKey) (*Capsule, *[33]byte, error) {
	for {
		r, err := randomNonZeroScalar(rnd)
		if err != nil {
			return nil, nil, err
		}
		u, err := randomNonZeroScalar(rnd)
		if err != nil {
			return nil, nil, err
		}
		var ru curve.Scalar
		ru.Add2(&r, &u)
		if ru.IsZero() {
			// S would be the identity; the probability is 2^-256.
			continue
		}
		var c Capsule
		c.e.ScalarBaseMult(&r)
		c.v.ScalarBaseMult(&u)
		var shared curve.Point
		shared.ScalarMult(&ru, &pk.p)
		enc, err := curve.BatchCompressed([]*curve.Point{&c.e, &c.v, &shared})
		if err != nil {
			continue
		}
		c.eb, c.vb = enc[0], enc[1]
		h := hashToScalar(dstCapsulePoints, c.eb[:], c.vb[:])
		c.s.Mul2(&r, &h).Add(&u)
		r.Zero()
		u.Zero()
		ru.Zero()
		keySeed := enc[2]
		return &c, &keySeed, nil
	}
}

// DecryptOriginal opens a ciphertext with the secret key the capsule was
// made for: the key seed is sk·(E + V). A nil or zero-value sk or c is
// refused with ErrInvalidArgument; every other failure is ErrDecryption.
func DecryptOriginal(sk *SecretKey, c *Capsule, ct []byte) ([]byte, error) {
	if !sk.valid() {
		return nil, errInvalid("secret key")
	}
	if !c.valid() {
		return nil, errInvalid("capsule")
	}
	var ev, shared curve.Point
	ev.Add(&c.e, &c.v)
	shared.ScalarMult(&sk.s, &ev)
	keySeed, err := shared.Compressed()
	if err != nil {
		return nil, ErrDecryption
	}
	return demDecrypt(&keySeed, ct, c.simpleBytes())
}
