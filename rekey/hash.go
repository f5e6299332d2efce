package rekey

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"github.com/kadre/kadre/rekey/internal/curve"
)

// Domain-separation tags of umbral-pre 0.10 (SPEC.md §2).
const (
	dstCapsulePoints     = "CAPSULE_POINTS"
	dstPolynomialArg     = "POLYNOMIAL_ARG"
	dstSharedSecret      = "SHARED_SECRET"
	dstCfragVerification = "CFRAG_VERIFICATION"
	labelKeyDerivation   = "KEY_DERIVATION/"
	labelSecretDerive    = "SECRET_DERIVATION/"
	labelFactoryDerive   = "FACTORY_DERIVATION/"
)

// uCompressed is the reference's second generator U =
// hash_to_curve("POINT_U", DST "PARAMETERS") with the RFC 9380 suite
// secp256k1_XMD:SHA-256_SSWU_RO_ (SPEC.md §2).
const uCompressedHex = "03079390d0fbe220fc34aab8ecbf49098098036820fadb98c03143e55db8ec73cd"

// nMinusOne is the group order minus one, big-endian.
var nMinusOne = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x40,
}

type parameters struct {
	g      curve.Point
	u      curve.Point
	uBytes [33]byte
	uTable *curve.Table
}

var params = sync.OnceValue(func() *parameters {
	p := new(parameters)
	p.g.Set(curve.NewGeneratorPoint())
	b, err := hex.DecodeString(uCompressedHex)
	if err != nil {
		panic("rekey: bad U constant")
	}
	if _, err := p.u.SetBytes(b); err != nil {
		panic("rekey: U is not a point")
	}
	copy(p.uBytes[:], b)
	p.uTable = curve.NewTable(&p.u)
	return p
})

// hashToScalar is the reference's ScalarDigest: SHA-256 of the 4-byte
// big-endian DST length, the DST and the parts, read big-endian and reduced
// to [1, n-1] as (x mod (n-1)) + 1. It runs in constant time in its inputs
// because SHARED_SECRET and POLYNOMIAL_ARG hash a Diffie-Hellman point.
func hashToScalar(dst string, parts ...[]byte) curve.Scalar {
	h := sha256.New()
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(dst)))
	h.Write(l[:])
	h.Write([]byte(dst))
	for _, p := range parts {
		h.Write(p)
	}
	var x [32]byte
	h.Sum(x[:0])
	// x < 2^256 < 2(n-1), so x mod (n-1) + 1 is x+1 when x < n-1 and
	// x-(n-1)+1 = (x mod n) + 2 otherwise; SetBytes yields x mod n and
	// whether x ≥ n.
	var s curve.Scalar
	overflow := s.SetBytes(&x)
	atLeastNMinusOne := overflow | uint32(subtle.ConstantTimeCompare(x[:], nMinusOne[:]))
	var add curve.Scalar
	add.SetInt(1 + atLeastNMinusOne)
	s.Add(&add)
	return s
}
