package policy

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// PublicKeySize is the size of a compressed secp256k1 public key.
const PublicKeySize = 33

// PublicKey is a secp256k1 public key in its 33-byte SEC1 compressed form,
// as records carry it. Values produced by this package's parsers are always
// valid curve points; use ParsePublicKey to build one from bytes.
type PublicKey [PublicKeySize]byte

// ParsePublicKey checks that b is a 33-byte compressed encoding of a point
// on secp256k1 (not the identity, not the uncompressed or hybrid forms, so
// that every key has one encoding in records).
func ParsePublicKey(b []byte) (PublicKey, error) {
	var pk PublicKey
	if len(b) != PublicKeySize {
		return pk, fmt.Errorf("%w: public key must be %d bytes, got %d", ErrMalformed, PublicKeySize, len(b))
	}
	if err := checkPoint(b); err != nil {
		return pk, err
	}
	copy(pk[:], b)
	return pk, nil
}

// Bytes returns a copy of the 33 bytes.
func (pk PublicKey) Bytes() []byte { return append([]byte(nil), pk[:]...) }

// String returns the lowercase hex of the compressed key.
func (pk PublicKey) String() string { return hex.EncodeToString(pk[:]) }

// Identity is a user's public identity: the identity key (the libp2p peer
// key of the user's client host; it signs the user's records and
// authenticates re-encryption requests) and the receiving key (the Umbral
// key grants re-encrypt to). Both derive from the user's master seed with
// distinct labels (rekey.Keyring), so neither key is used in two protocols.
type Identity struct {
	IdentityKey  PublicKey
	ReceivingKey PublicKey
}

// IdentitySize is the size of Identity.Bytes.
const IdentitySize = 2 * PublicKeySize

// Identity string format (SPEC.md §3.3): Bech32m
// (BIP 350) with human-readable part "kadre", data = one 5-bit format version
// (0) followed by the 66 identity bytes regrouped into 5-bit groups. Bech32m
// detects any error in up to 4 characters and is case-insensitive, so the
// string survives retyping and copy-paste.
const (
	identityHRP     = "kadre"
	identityVersion = 0
	// IdentityStringLen is the length of every identity string:
	// "kadre" + "1" + version + ceil(66·8/5) + 6 checksum characters.
	IdentityStringLen = len(identityHRP) + 1 + 1 + (IdentitySize*8+4)/5 + 6
)

// Bytes returns IdentityKey ‖ ReceivingKey (66 bytes).
func (id Identity) Bytes() []byte {
	out := make([]byte, 0, IdentitySize)
	out = append(out, id.IdentityKey[:]...)
	return append(out, id.ReceivingKey[:]...)
}

// ParseIdentityBytes parses IdentityKey ‖ ReceivingKey.
func ParseIdentityBytes(b []byte) (Identity, error) {
	var id Identity
	if len(b) != IdentitySize {
		return id, fmt.Errorf("%w: identity must be %d bytes, got %d", ErrInvalidIdentity, IdentitySize, len(b))
	}
	var err error
	if id.IdentityKey, err = ParsePublicKey(b[:PublicKeySize]); err != nil {
		return id, fmt.Errorf("%w: identity key: %w", ErrInvalidIdentity, err)
	}
	if id.ReceivingKey, err = ParsePublicKey(b[PublicKeySize:]); err != nil {
		return id, fmt.Errorf("%w: receiving key: %w", ErrInvalidIdentity, err)
	}
	return id, nil
}

// String returns the copy-pasteable form, "kadre1q…" (IdentityStringLen
// lowercase characters).
func (id Identity) String() string {
	data := make([]byte, 0, 1+(IdentitySize*8+4)/5)
	data = append(data, identityVersion)
	data = convertBits8to5(data, id.Bytes())
	return bech32mEncode(identityHRP, data)
}

// ParseIdentity parses the String form. Upper case is accepted (Bech32
// strings may be written in either case) but mixed case is not.
func ParseIdentity(s string) (Identity, error) {
	var id Identity
	s = strings.TrimSpace(s)
	if len(s) != IdentityStringLen {
		return id, fmt.Errorf("%w: an identity is %d characters starting with %q, got %d characters", ErrInvalidIdentity, IdentityStringLen, identityHRP+"1", len(s))
	}
	hrp, data, err := bech32mDecode(s)
	if err != nil {
		return id, fmt.Errorf("%w: %w", ErrInvalidIdentity, err)
	}
	if hrp != identityHRP {
		return id, fmt.Errorf("%w: prefix %q is not %q", ErrInvalidIdentity, hrp, identityHRP)
	}
	if data[0] != identityVersion {
		return id, fmt.Errorf("%w: unsupported identity format version %d", ErrInvalidIdentity, data[0])
	}
	raw, ok := convertBits5to8(data[1:])
	if !ok || len(raw) != IdentitySize {
		return id, fmt.Errorf("%w: bad payload encoding", ErrInvalidIdentity)
	}
	return ParseIdentityBytes(raw)
}

// Bech32m (BIP 350). Hand-written because it is 60 lines and no pinned
// dependency exports it; tested against the BIP's vectors.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

const bech32mConst = 0x2bc830a3

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if (b>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func bech32HRPExpand(hrp string) []byte {
	out := make([]byte, 0, 2*len(hrp)+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// bech32mEncode encodes 5-bit values; hrp must be lowercase ASCII 33..126.
func bech32mEncode(hrp string, data []byte) string {
	values := append(bech32HRPExpand(hrp), data...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(values) ^ bech32mConst
	var b strings.Builder
	b.Grow(len(hrp) + 1 + len(data) + 6)
	b.WriteString(hrp)
	b.WriteByte('1')
	for _, d := range data {
		b.WriteByte(bech32Charset[d])
	}
	for i := range 6 {
		b.WriteByte(bech32Charset[(mod>>(5*(5-i)))&31])
	}
	return b.String()
}

// bech32mDecode returns the lowercase hrp and the 5-bit data without the
// checksum. It implements BIP 350's validity rules except the 90-character
// limit, which the callers replace with their own exact length.
func bech32mDecode(s string) (string, []byte, error) {
	lower, upper := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			return "", nil, fmt.Errorf("character %d is not printable ASCII", i)
		}
		lower = lower || ('a' <= c && c <= 'z')
		upper = upper || ('A' <= c && c <= 'Z')
	}
	if lower && upper {
		return "", nil, fmt.Errorf("mixed upper and lower case")
	}
	s = strings.ToLower(s)
	sep := strings.LastIndexByte(s, '1')
	if sep < 1 || sep+7 > len(s) {
		return "", nil, fmt.Errorf("missing separator or checksum")
	}
	hrp := s[:sep]
	data := make([]byte, 0, len(s)-sep-1)
	for i := sep + 1; i < len(s); i++ {
		d := strings.IndexByte(bech32Charset, s[i])
		if d < 0 {
			return "", nil, fmt.Errorf("character %q at position %d is not in the Bech32 alphabet (no 1, b, i, o)", s[i], i)
		}
		data = append(data, byte(d))
	}
	if bech32Polymod(append(bech32HRPExpand(hrp), data...)) != bech32mConst {
		return "", nil, fmt.Errorf("checksum mismatch (a typo, or a truncated copy)")
	}
	return hrp, data[:len(data)-6], nil
}

// convertBits8to5 appends the bytes of in as 5-bit groups, the last group
// zero-padded.
func convertBits8to5(out, in []byte) []byte {
	var acc uint32
	bits := 0
	for _, b := range in {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, byte(acc>>bits)&31)
		}
	}
	if bits > 0 {
		out = append(out, byte(acc<<(5-bits))&31)
	}
	return out
}

// convertBits5to8 regroups 5-bit values into bytes. It fails on padding of
// 5 bits or more or on non-zero padding bits, so each byte string has
// exactly one encoding.
func convertBits5to8(in []byte) ([]byte, bool) {
	var acc uint32
	bits := 0
	out := make([]byte, 0, len(in)*5/8)
	for _, v := range in {
		if v > 31 {
			return nil, false
		}
		acc = acc<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if bits >= 5 || acc&(1<<bits-1) != 0 {
		return nil, false
	}
	return out, true
}
