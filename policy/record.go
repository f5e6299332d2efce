package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Record format (SPEC.md §3.4.1). Every record's canonical body
// starts with the format version and the record type, then fixed-size
// fields, integers big-endian, variable fields length-prefixed; the signed
// form is body ‖ signature (64 bytes). Parsers accept exactly the bytes the
// encoders produce: any other length, trailing byte, unknown version or
// type, out-of-domain value or non-canonical signature is refused.
const (
	recordTypeGrant      = 1
	recordTypeRevocation = 2
	recordTypeReceipt    = 3
	recordTypeNodeInfo   = 4
	recordTypeHolderMap  = 5
	recordTypeAdmission  = 6
	recordTypeHandoff    = 7
	recordTypeWriter     = 8
)

// Format versions, per record type: a record type's layout changes only
// with its version (SPEC.md §3.4.1).
const (
	grantVersion      = 1
	revocationVersion = 1
	receiptVersion    = 2 // version 2 names the fragment it is about
	nodeInfoVersion   = 1
	holderMapVersion  = 1
	admissionVersion  = 1
	handoffVersion    = 1
	writerVersion     = 1
)

// Domain-separation labels (SPEC.md §3.4.2). A record is
// signed as ECDSA over SHA-256(SHA-256(label ‖ body)): the signer's message
// is the 32-byte digest. Each label starts with "kadre/", ends with the only
// NUL it contains, and names the record type and version, so label ‖ body
// decodes uniquely and no two record types share a signed message.
const (
	LabelGrant      = "kadre/grant/v1\x00"
	LabelRevocation = "kadre/revocation/v1\x00"
	LabelReceipt    = "kadre/receipt/v1\x00"
	LabelNodeInfo   = "kadre/node-info/v1\x00"
	LabelHolderMap  = "kadre/holder-map/v1\x00"
	LabelAdmission  = "kadre/admission/v1\x00"
	LabelHandoff    = "kadre/handoff/v1\x00"
	LabelWriter     = "kadre/writer/v1\x00"
)

// Algorithm identifiers (seed 003: algorithms are pluggable and named in
// the record). Version 1 defines one of each; zero is never valid.
type (
	// PREAlgorithm names the proxy re-encryption scheme of a kfrag.
	PREAlgorithm uint8
	// SignatureAlgorithm names the signature scheme of a record.
	SignatureAlgorithm uint8
	// PathHashAlgorithm names the function that computed a path hash.
	PathHashAlgorithm uint8
)

const (
	// PREUmbral is Umbral on secp256k1 as in umbral-pre 0.10 (package
	// rekey): 310-byte kfrags, 381-byte cfrags, 105-byte capsules.
	PREUmbral PREAlgorithm = 1
	// SignatureECDSASecp256k1 is 64-byte r‖s ECDSA on secp256k1 over
	// SHA-256 of the 32-byte labelled record digest, low S required.
	SignatureECDSASecp256k1 SignatureAlgorithm = 1
	// PathHashPairHMACSHA3 is HMAC-SHA3-256 keyed by the pair's secret
	// over the normalized prefix and the key epoch (PairKey.PathHash).
	// Identifier 1, keyed by the two public identity keys, is retired:
	// anyone could compute it and test guessed paths.
	PathHashPairHMACSHA3 PathHashAlgorithm = 2
)

func (a PREAlgorithm) check() error {
	if a != PREUmbral {
		return fmt.Errorf("%w: re-encryption algorithm %d", ErrUnknownAlgorithm, a)
	}
	return nil
}

func (a SignatureAlgorithm) check() error {
	if a != SignatureECDSASecp256k1 {
		return fmt.Errorf("%w: signature algorithm %d", ErrUnknownAlgorithm, a)
	}
	return nil
}

func (a PathHashAlgorithm) check() error {
	if a != PathHashPairHMACSHA3 {
		return fmt.Errorf("%w: path hash algorithm %d", ErrUnknownAlgorithm, a)
	}
	return nil
}

// MaxTimestamp is the largest timestamp (Unix seconds) a record may carry,
// 9999-12-31T23:59:59Z; it keeps every timestamp representable as a
// time.Time and an int64 with room for arithmetic.
const MaxTimestamp = 253402300799

// SignatureSize is the size of a record signature.
const SignatureSize = 64

// Signature is a 64-byte r‖s ECDSA signature with r in [1, n−1] and s in
// [1, n/2] (low S). Requiring low S makes the signed bytes of a record
// unique for a given signature, so record IDs (hashes of the signed bytes)
// cannot be changed by a third party.
type Signature [SignatureSize]byte

// RecordID is the SHA-256 of a record's signed bytes (body ‖ signature):
// what a receipt names and what logs print.
type RecordID [32]byte

// String returns the lowercase hex.
func (id RecordID) String() string { return hex.EncodeToString(id[:]) }

func recordID(signed []byte) RecordID { return sha256.Sum256(signed) }

// secp256k1 group order n and ⌊n/2⌋, big-endian.
var (
	curveOrder     = [32]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
	curveHalfOrder = [32]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0}
)

// compareBE compares two 32-byte big-endian integers (public values).
func compareBE(a, b []byte) int {
	for i := range 32 {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func isZero32(a []byte) bool {
	var acc byte
	for _, x := range a[:32] {
		acc |= x
	}
	return acc == 0
}

// checkSignatureEncoding enforces 1 ≤ r < n and 1 ≤ s ≤ n/2.
func checkSignatureEncoding(sig []byte) error {
	r, s := sig[:32], sig[32:64]
	if isZero32(r) || compareBE(r, curveOrder[:]) >= 0 || isZero32(s) || compareBE(s, curveOrder[:]) >= 0 {
		return fmt.Errorf("%w: signature scalar out of range", ErrBadSignature)
	}
	if compareBE(s, curveHalfOrder[:]) > 0 {
		return fmt.Errorf("%w: signature is not in low-S form", ErrBadSignature)
	}
	return nil
}

// signingDigest is the message handed to the ECDSA signer:
// SHA-256(label ‖ body). The signer hashes it once more, so the ECDSA input
// is always exactly 32 bytes long (the cross-protocol argument of
// SPEC.md §3.4.2).
func signingDigest(label string, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(body)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// checkTimestamp checks a record timestamp: 1 ≤ t ≤ MaxTimestamp.
func checkTimestamp(name string, t uint64) error {
	if t == 0 || t > MaxTimestamp {
		return fmt.Errorf("%w: %s %d outside 1..%d", ErrMalformed, name, t, MaxTimestamp)
	}
	return nil
}

// unixTime converts a checked timestamp.
func unixTime(t uint64) time.Time { return time.Unix(int64(t), 0).UTC() }

// decoder reads fields off a record. The first failure sticks; fields read
// after it are zero. Lengths are checked up front by the callers, so a
// short read is always a malformed record.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if len(d.b) < n {
		d.fail("truncated record")
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8   { return d.take(1)[0] }
func (d *decoder) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *decoder) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }
func (d *decoder) hash32() (h [32]byte) {
	copy(h[:], d.take(32))
	return h
}

func (d *decoder) key(name string) PublicKey {
	b := d.take(PublicKeySize)
	if d.err != nil {
		return PublicKey{}
	}
	pk, err := ParsePublicKey(b)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", name, err)
	}
	return pk
}

func (d *decoder) signature() Signature {
	var s Signature
	b := d.take(SignatureSize)
	if d.err != nil {
		return s
	}
	if err := checkSignatureEncoding(b); err != nil {
		d.err = err
	}
	copy(s[:], b)
	return s
}

// header reads and checks the version and type bytes.
func (d *decoder) header(version, recordType uint8, name string) {
	v := d.u8()
	t := d.u8()
	if d.err != nil {
		return
	}
	if v != version {
		d.err = fmt.Errorf("%w: %s format version %d (this kadre reads version %d)", ErrUnsupportedVersion, name, v, version)
		return
	}
	if t != recordType {
		d.fail("record type %d is not a %s", t, name)
	}
}

// end fails if bytes remain.
func (d *decoder) end() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
