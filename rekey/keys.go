package rekey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/hkdf"

	"github.com/kadre/kadre/rekey/internal/curve"
)

// Sizes of the canonical encodings (SPEC.md §2.1).
const (
	SecretKeySize = 32
	PublicKeySize = 33
	SignatureSize = 64
	SeedSize      = 32
)

var (
	// ErrInvalidEncoding is returned by every parser for bytes that are not
	// the canonical encoding of the object.
	ErrInvalidEncoding = errors.New("rekey: invalid encoding")
	// ErrVerification is the single error of every failed verification.
	ErrVerification = errors.New("rekey: verification failed")
	// ErrDecryption is the single error of every failed decryption.
	ErrDecryption = errors.New("rekey: decryption failed")
	// ErrInvalidArgument is the error of a caller mistake: a nil or
	// zero-value key, capsule, kfrag, cfrag, signer or signature, a nil
	// io.Reader, or out-of-range parameters. Bytes from the network or the
	// disk never cause it: they fail to parse with ErrInvalidEncoding.
	ErrInvalidArgument = errors.New("rekey: invalid argument")
)

// errInvalid is ErrInvalidArgument for the nil or zero-value argument what.
func errInvalid(what string) error {
	return fmt.Errorf("%w: %s is nil or a zero value", ErrInvalidArgument, what)
}

// errNilReader is ErrInvalidArgument for a nil randomness source.
var errNilReader = fmt.Errorf("%w: nil io.Reader for randomness", ErrInvalidArgument)

// SecretKey is a secp256k1 secret scalar in [1, n-1]. Make one with
// GenerateSecretKey, ParseSecretKey or a SecretKeyFactory; the zero value
// is not a key (its methods answer as for nil, and every function refuses
// it with ErrInvalidArgument).
type SecretKey struct {
	s  curve.Scalar
	pk *PublicKey // nil only in the zero value
}

// PublicKey is a secp256k1 point other than the identity. Make one with
// ParsePublicKey or SecretKey.PublicKey; the zero value is not a key (its
// methods answer as for nil, and every function refuses it with
// ErrInvalidArgument).
type PublicKey struct {
	p curve.Point
	b [PublicKeySize]byte // 02 or 03 first, 00 only in the zero value
}

// valid reports whether sk is a key, not nil or the zero value. It looks
// at the pointer to the public key only, so it leaks nothing about s.
func (sk *SecretKey) valid() bool { return sk != nil && sk.pk != nil }

// valid reports whether pk is a key, not nil or the zero value.
func (pk *PublicKey) valid() bool { return pk != nil && pk.b[0] != 0 }

// GenerateSecretKey returns a uniformly random secret key from crypto/rand.
func GenerateSecretKey() *SecretKey {
	sk, err := GenerateSecretKeyWithRand(rand.Reader)
	if err != nil {
		panic("rekey: crypto/rand failed: " + err.Error())
	}
	return sk
}

// GenerateSecretKeyWithRand returns a uniformly random secret key drawn
// from r.
func GenerateSecretKeyWithRand(r io.Reader) (*SecretKey, error) {
	if r == nil {
		return nil, errNilReader
	}
	s, err := randomNonZeroScalar(r)
	if err != nil {
		return nil, err
	}
	return newSecretKey(&s), nil
}

func newSecretKey(s *curve.Scalar) *SecretKey {
	sk := &SecretKey{s: *s}
	var p curve.Point
	p.ScalarBaseMult(&sk.s)
	sk.pk = newPublicKey(&p)
	return sk
}

// newPublicKey wraps a point known not to be the identity.
func newPublicKey(p *curve.Point) *PublicKey {
	pk := &PublicKey{p: *p}
	b, err := p.Compressed()
	if err != nil {
		panic("rekey: public key is the identity")
	}
	pk.b = b
	return pk
}

// ParseSecretKey parses a 32-byte big-endian scalar in [1, n-1].
func ParseSecretKey(b []byte) (*SecretKey, error) {
	if len(b) != SecretKeySize {
		return nil, fmt.Errorf("%w: secret key must be %d bytes, got %d", ErrInvalidEncoding, SecretKeySize, len(b))
	}
	var s curve.Scalar
	if s.SetByteSlice(b) || s.IsZero() {
		return nil, fmt.Errorf("%w: secret key out of range", ErrInvalidEncoding)
	}
	return newSecretKey(&s), nil
}

// Bytes returns the 32-byte big-endian encoding of the secret scalar, or
// nil for a nil or zero-value SecretKey (which ParseSecretKey refuses).
func (sk *SecretKey) Bytes() []byte {
	if !sk.valid() {
		return nil
	}
	b := sk.s.Bytes()
	return b[:]
}

// PublicKey returns sk·G, or nil for a nil or zero-value SecretKey; every
// function refuses the nil key with ErrInvalidArgument.
func (sk *SecretKey) PublicKey() *PublicKey {
	if !sk.valid() {
		return nil
	}
	return sk.pk
}

// Equal reports in constant time in the scalars whether two secret keys
// are the same. A nil or zero-value key equals no key, not even another
// nil or zero one, so that two missing keys never pass as one.
func (sk *SecretKey) Equal(o *SecretKey) bool {
	if !sk.valid() || !o.valid() {
		return false
	}
	a, b := sk.s.Bytes(), o.s.Bytes()
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// DiffieHellman returns the compressed encoding of sk·pk, the secp256k1
// Diffie-Hellman point of the two keys (so a.DiffieHellman(B) equals
// b.DiffieHellman(A)). The multiplication is constant time (sk is secret).
// The result must only ever be used as key material through a KDF with a
// label of its own (kadre's pair keys, SPEC.md §3.2.3); secp256k1 has
// cofactor 1 and pk is a checked point, so the result is never the
// identity.
func (sk *SecretKey) DiffieHellman(pk *PublicKey) ([PublicKeySize]byte, error) {
	if !sk.valid() {
		return [PublicKeySize]byte{}, errInvalid("secret key")
	}
	if !pk.valid() {
		return [PublicKeySize]byte{}, errInvalid("public key")
	}
	var p curve.Point
	p.ScalarMult(&sk.s, &pk.p)
	b, err := p.Compressed()
	if err != nil {
		return [PublicKeySize]byte{}, fmt.Errorf("rekey: Diffie-Hellman point is the identity")
	}
	return b, nil
}

// ParsePublicKey parses a 33-byte SEC1 compressed point. The identity,
// uncompressed, hybrid and compact forms are refused.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	p, err := parsePoint(b)
	if err != nil {
		return nil, err
	}
	pk := &PublicKey{p: *p}
	copy(pk.b[:], b)
	return pk, nil
}

// parsePoint accepts exactly a 33-byte 02/03 compressed point on the curve.
func parsePoint(b []byte) (*curve.Point, error) {
	if len(b) != PublicKeySize || (b[0] != 2 && b[0] != 3) {
		return nil, fmt.Errorf("%w: point must be 33-byte compressed", ErrInvalidEncoding)
	}
	var p curve.Point
	if _, err := p.SetBytes(b); err != nil {
		return nil, fmt.Errorf("%w: not a curve point", ErrInvalidEncoding)
	}
	return &p, nil
}

// Bytes returns the 33-byte compressed encoding, or nil for a nil or
// zero-value PublicKey (which ParsePublicKey refuses).
func (pk *PublicKey) Bytes() []byte {
	if !pk.valid() {
		return nil
	}
	b := pk.b
	return b[:]
}

// Equal reports whether two public keys are the same point. A nil or
// zero-value key equals no key, not even another nil or zero one.
func (pk *PublicKey) Equal(o *PublicKey) bool {
	return pk.valid() && o.valid() && pk.b == o.b
}

// String returns the hex of the compressed encoding, or "<nil>" for a nil
// or zero-value PublicKey.
func (pk *PublicKey) String() string {
	if !pk.valid() {
		return "<nil>"
	}
	return fmt.Sprintf("%x", pk.b[:])
}

// Signature is an ECDSA signature over SHA-256 with r, s in [1, n-1]. Make
// one with Signer.Sign or ParseSignature; the zero value (r = s = 0) is not
// a signature: it verifies nothing and has no encoding.
type Signature struct {
	r, s curve.Scalar
}

// valid reports whether sig is a signature, not nil or the zero value.
func (sig *Signature) valid() bool { return sig != nil && !sig.r.IsZero() && !sig.s.IsZero() }

// ParseSignature parses the 64-byte r‖s form. Like the reference, a
// high-S signature is accepted.
func ParseSignature(b []byte) (*Signature, error) {
	if len(b) != SignatureSize {
		return nil, fmt.Errorf("%w: signature must be %d bytes, got %d", ErrInvalidEncoding, SignatureSize, len(b))
	}
	var sig Signature
	if sig.r.SetByteSlice(b[:32]) || sig.r.IsZero() || sig.s.SetByteSlice(b[32:]) || sig.s.IsZero() {
		return nil, fmt.Errorf("%w: signature scalar out of range", ErrInvalidEncoding)
	}
	return &sig, nil
}

// Bytes returns the 64-byte r‖s encoding, or nil for a nil or zero-value
// Signature (which ParseSignature refuses).
func (sig *Signature) Bytes() []byte {
	if !sig.valid() {
		return nil
	}
	out := make([]byte, SignatureSize)
	sig.r.PutBytesUnchecked(out[:32])
	sig.s.PutBytesUnchecked(out[32:])
	return out
}

// IsLowS reports whether s ≤ n/2, the only form Sign produces. It is false
// for a nil or zero-value Signature.
func (sig *Signature) IsLowS() bool { return sig.valid() && !sig.s.IsOverHalfOrder() }

// Equal reports whether two signatures have the same r and s. A nil or
// zero-value signature equals no signature, not even another nil or zero
// one.
func (sig *Signature) Equal(o *Signature) bool {
	return sig.valid() && o.valid() && sig.r.Equals(&o.r) && sig.s.Equals(&o.s)
}

// Verify reports whether sig is a valid signature of SHA-256(msg) by pk.
// It is false when sig or pk is nil or a zero value. Variable time: every
// input is public.
func (sig *Signature) Verify(pk *PublicKey, msg []byte) bool {
	if !sig.valid() || !pk.valid() {
		return false
	}
	digest := sha256.Sum256(msg)
	return sig.verifyDigest(pk, &digest)
}

func (sig *Signature) verifyDigest(pk *PublicKey, digest *[32]byte) bool {
	var z curve.Scalar
	z.SetBytes(digest)
	var w curve.Scalar
	w.InverseValNonConst(&sig.s)
	var u1, u2 curve.Scalar
	u1.Mul2(&z, &w)
	u2.Mul2(&sig.r, &w)
	var R curve.Point
	R.DoubleScalarMultVartime(&u1, &params().g, &u2, &pk.p)
	rb, err := R.Compressed()
	if err != nil {
		return false
	}
	var x curve.Scalar
	x.SetByteSlice(rb[1:])
	return x.Equals(&sig.r)
}

// Signer signs messages with a secret key. Make one with NewSigner or
// Keyring.KFragSigner; the zero value has no key, and Sign refuses it with
// ErrInvalidArgument.
type Signer struct {
	sk *SecretKey
}

// valid reports whether s has a key, not nil or the zero value.
func (s *Signer) valid() bool { return s != nil && s.sk.valid() }

// NewSigner returns a signer for sk, or nil if sk is nil or the zero
// SecretKey; Sign and every function refuse a nil Signer with
// ErrInvalidArgument.
func NewSigner(sk *SecretKey) *Signer {
	if !sk.valid() {
		return nil
	}
	return &Signer{sk: sk}
}

// VerifyingKey returns the public key that verifies this signer's
// signatures, or nil for a nil or zero-value Signer.
func (s *Signer) VerifyingKey() *PublicKey {
	if !s.valid() {
		return nil
	}
	return s.sk.pk
}

// Sign returns the deterministic (RFC 6979) low-S ECDSA signature of
// SHA-256(msg). It fails only with ErrInvalidArgument, for a nil or
// zero-value Signer.
func (s *Signer) Sign(msg []byte) (*Signature, error) {
	if !s.valid() {
		return nil, errInvalid("signer")
	}
	digest := sha256.Sum256(msg)
	return s.signDigest(&digest, nil), nil
}

// SignWithRand is Sign with 32 bytes from r mixed into the RFC 6979 nonce
// derivation as additional data, as the reference does.
func (s *Signer) SignWithRand(r io.Reader, msg []byte) (*Signature, error) {
	if !s.valid() {
		return nil, errInvalid("signer")
	}
	if r == nil {
		return nil, errNilReader
	}
	var extra [32]byte
	if _, err := io.ReadFull(r, extra[:]); err != nil {
		return nil, fmt.Errorf("failed to read randomness: %w", err)
	}
	digest := sha256.Sum256(msg)
	return s.signDigest(&digest, extra[:]), nil
}

// signDigests signs several digests deterministically (RFC 6979), sharing
// one field inversion for the nonce points' x coordinates and one scalar
// inversion for the nonces (Montgomery's trick, constant time); the
// signatures are those signDigest makes one by one.
func (s *Signer) signDigests(digests [][32]byte) []Signature {
	n := len(digests)
	skBytes := s.sk.s.Bytes()
	ks := make([]curve.Scalar, n)
	Rs := make([]curve.Point, n)
	ptrs := make([]*curve.Point, n)
	for i := range digests {
		ks[i] = *secp256k1.NonceRFC6979(skBytes[:], digests[i][:], nil, nil, 0)
		Rs[i].ScalarBaseMult(&ks[i])
		ptrs[i] = &Rs[i]
	}
	defer func() {
		for i := range ks {
			ks[i].Zero()
		}
	}()
	enc, err := curve.BatchCompressed(ptrs)
	if err != nil {
		// R = identity needs k = 0, which RFC 6979 never returns; sign one
		// by one, which handles every corner.
		return s.signEach(digests)
	}
	// Invert every nonce at once: prefix products, one inversion, peel.
	prefix := make([]curve.Scalar, n)
	var acc, inv curve.Scalar
	acc.SetInt(1)
	for i := range ks {
		prefix[i].Set(&acc)
		acc.Mul(&ks[i])
	}
	curve.InvertScalar(&inv, &acc)
	sigs := make([]Signature, n)
	for i := n - 1; i >= 0; i-- {
		var kinv, z curve.Scalar
		kinv.Mul2(&inv, &prefix[i])
		inv.Mul(&ks[i])
		sig := &sigs[i]
		sig.r.SetByteSlice(enc[i][1:])
		z.SetBytes(&digests[i])
		sig.s.Mul2(&sig.r, &s.sk.s).Add(&z).Mul(&kinv)
		kinv.Zero()
		if sig.r.IsZero() || sig.s.IsZero() {
			return s.signEach(digests)
		}
		if sig.s.IsOverHalfOrder() {
			sig.s.Negate()
		}
	}
	acc.Zero()
	inv.Zero()
	return sigs
}

func (s *Signer) signEach(digests [][32]byte) []Signature {
	sigs := make([]Signature, len(digests))
	for i := range digests {
		sigs[i] = *s.signDigest(&digests[i], nil)
	}
	return sigs
}

func (s *Signer) signDigest(digest *[32]byte, extra []byte) *Signature {
	skBytes := s.sk.s.Bytes()
	var z curve.Scalar
	z.SetBytes(digest)
	for iteration := uint32(0); ; iteration++ {
		k := secp256k1.NonceRFC6979(skBytes[:], digest[:], extra, nil, iteration)
		var R curve.Point
		R.ScalarBaseMult(k)
		rb, err := R.Compressed()
		if err != nil {
			k.Zero()
			continue
		}
		var sig Signature
		sig.r.SetByteSlice(rb[1:])
		if sig.r.IsZero() {
			k.Zero()
			continue
		}
		// s = k^-1 (z + r·d), with a constant-time inversion of k.
		var kinv curve.Scalar
		curve.InvertScalar(&kinv, k)
		sig.s.Mul2(&sig.r, &s.sk.s).Add(&z).Mul(&kinv)
		k.Zero()
		kinv.Zero()
		if sig.s.IsZero() {
			continue
		}
		// s is public once the signature is released, so branching on its
		// half-order test leaks nothing.
		if sig.s.IsOverHalfOrder() {
			sig.s.Negate()
		}
		return &sig
	}
}

// randomNonZeroScalar draws a uniform scalar in [1, n-1] by rejection.
func randomNonZeroScalar(r io.Reader) (curve.Scalar, error) {
	var b [32]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return curve.Scalar{}, fmt.Errorf("failed to read randomness: %w", err)
		}
		var s curve.Scalar
		if s.SetBytes(&b) == 0 && !s.IsZero() {
			return s, nil
		}
	}
}

// SecretKeyFactory derives secret keys, secrets and sub-factories from a
// 32-byte seed with HKDF-SHA256, as the reference's SecretKeyFactory. Make
// one with NewSecretKeyFactory or GenerateSecretKeyFactory; the zero value
// has no seed (it is not the all-zero seed, which NewSecretKeyFactory
// accepts) and derives nothing.
type SecretKeyFactory struct {
	seed [SeedSize]byte
	set  bool // false only in the zero value
}

// valid reports whether f has a seed, not nil or the zero value.
func (f *SecretKeyFactory) valid() bool { return f != nil && f.set }

// NewSecretKeyFactory returns a factory for a 32-byte seed.
func NewSecretKeyFactory(seed []byte) (*SecretKeyFactory, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("%w: seed must be %d bytes, got %d", ErrInvalidEncoding, SeedSize, len(seed))
	}
	f := &SecretKeyFactory{set: true}
	copy(f.seed[:], seed)
	return f, nil
}

// GenerateSecretKeyFactory returns a factory with a seed from crypto/rand.
func GenerateSecretKeyFactory() *SecretKeyFactory {
	f := &SecretKeyFactory{set: true}
	if _, err := io.ReadFull(rand.Reader, f.seed[:]); err != nil {
		panic("rekey: crypto/rand failed: " + err.Error())
	}
	return f
}

func (f *SecretKeyFactory) expand(info []byte, n int) []byte {
	out := make([]byte, n)
	if _, err := io.ReadFull(hkdf.New(sha256.New, f.seed[:], nil, info), out); err != nil {
		panic("rekey: hkdf failed: " + err.Error())
	}
	return out
}

// MakeKey derives the secret key for label: HKDF(seed, "KEY_DERIVATION/" ‖
// label, 64) hashed to a non-zero scalar with the whole info as DST. It
// returns nil for a nil or zero-value factory.
func (f *SecretKeyFactory) MakeKey(label []byte) *SecretKey {
	if !f.valid() {
		return nil
	}
	info := append([]byte(labelKeyDerivation), label...)
	okm := f.expand(info, 64)
	s := hashToScalar(string(info), okm)
	return newSecretKey(&s)
}

// MakeSecret derives 64 secret bytes for label. It returns nil for a nil
// or zero-value factory.
func (f *SecretKeyFactory) MakeSecret(label []byte) []byte {
	if !f.valid() {
		return nil
	}
	return f.expand(append([]byte(labelSecretDerive), label...), 64)
}

// MakeFactory derives an independent factory for label. It returns nil for
// a nil or zero-value factory.
func (f *SecretKeyFactory) MakeFactory(label []byte) *SecretKeyFactory {
	if !f.valid() {
		return nil
	}
	sub := &SecretKeyFactory{set: true}
	copy(sub.seed[:], f.expand(append([]byte(labelFactoryDerive), label...), SeedSize))
	return sub
}
