package policy

import (
	"fmt"
	"time"
)

// Receipt sizes (SPEC.md §3.4.5).
const (
	ReceiptBodySize = 182
	ReceiptSize     = ReceiptBodySize + SignatureSize
)

// ReceiptKind says what a node attests to.
type ReceiptKind uint8

const (
	// ReceiptStored: the node verified and stored the grant Subject (the
	// answer to StoreGrant); Fragment is the grant's ID too.
	ReceiptStored ReceiptKind = 1
	// Kind 2 (hand-off accepted, receipt version 1) is retired: a hand-off
	// is acknowledged by the receiving node's signature on the HandoffLink.
	// ReceiptRevoked: the node deleted the fragment Fragment (the ID of the
	// grant it held for the revocation Subject's storage key) and keeps a
	// tombstone.
	ReceiptRevoked ReceiptKind = 3
	// ReceiptRevokedNotHeld: the node held no fragment for the revocation
	// Subject's storage key (Fragment is zero); it recorded the tombstone
	// anyway, so it will refuse the revoked grant if it is ever offered. It
	// acknowledges the revocation; it proves nothing about any fragment.
	ReceiptRevokedNotHeld ReceiptKind = 4
)

func (k ReceiptKind) String() string {
	switch k {
	case ReceiptStored:
		return "stored"
	case ReceiptRevoked:
		return "revoked"
	case ReceiptRevokedNotHeld:
		return "revoked-not-held"
	}
	return fmt.Sprintf("unknown(%d)", uint8(k))
}

// IsRevocation reports whether k answers a revocation.
func (k ReceiptKind) IsRevocation() bool {
	return k == ReceiptRevoked || k == ReceiptRevokedNotHeld
}

// Receipt is a node-signed statement about one grant or revocation: that it
// stored a fragment, or that the fragment under a storage key is gone. The
// owner verifies receipts against the record it sent (VerifyReceiptFor) and
// counts the distinct fragments their current holders deleted
// (RevocationVerdict) to know how many are provably gone.
//
// Owner, PathHash and Sequence repeat what the Subject record says so that
// a receipt is meaningful on its own (logs, a CLI listing).
type Receipt struct {
	SigAlg   SignatureAlgorithm
	Kind     ReceiptKind
	Node     PublicKey // node identity key: verifies Signature
	Owner    PublicKey
	PathHash PathHash
	Sequence uint64   // the Subject's sequence number
	Subject  RecordID // ID of the grant or revocation answered
	// Fragment is the grant (fragment) the receipt is about: the stored
	// grant, the deleted one, or zero when the node held none.
	Fragment RecordID
	IssuedAt uint64 // Unix seconds, by the node's clock

	Signature Signature
}

// IssuedTime returns IssuedAt as a time.
func (rc *Receipt) IssuedTime() time.Time { return unixTime(rc.IssuedAt) }

func (rc *Receipt) checkFields() error {
	if err := rc.SigAlg.check(); err != nil {
		return err
	}
	switch rc.Kind {
	case ReceiptStored, ReceiptRevoked:
		if rc.Fragment == (RecordID{}) {
			return fmt.Errorf("%w: a %s receipt names no fragment", ErrMalformed, rc.Kind)
		}
	case ReceiptRevokedNotHeld:
		if rc.Fragment != (RecordID{}) {
			return fmt.Errorf("%w: a %s receipt names a fragment", ErrMalformed, rc.Kind)
		}
	default:
		return fmt.Errorf("%w: receipt kind %d", ErrMalformed, rc.Kind)
	}
	if _, err := ParsePublicKey(rc.Node[:]); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if _, err := ParsePublicKey(rc.Owner[:]); err != nil {
		return fmt.Errorf("owner key: %w", err)
	}
	if rc.Sequence == 0 {
		return fmt.Errorf("%w: sequence number 0 (sequences start at 1)", ErrMalformed)
	}
	return checkTimestamp("issue time", rc.IssuedAt)
}

// BodyBytes returns the canonical body, the part the signature covers.
func (rc *Receipt) BodyBytes() []byte {
	b := make([]byte, 0, ReceiptBodySize)
	b = append(b, receiptVersion, recordTypeReceipt, byte(rc.SigAlg), byte(rc.Kind))
	b = append(b, rc.Node[:]...)
	b = append(b, rc.Owner[:]...)
	b = append(b, rc.PathHash[:]...)
	b = appendU64(b, rc.Sequence)
	b = append(b, rc.Subject[:]...)
	b = append(b, rc.Fragment[:]...)
	return appendU64(b, rc.IssuedAt)
}

// Bytes returns body ‖ signature.
func (rc *Receipt) Bytes() []byte { return append(rc.BodyBytes(), rc.Signature[:]...) }

// ID returns the SHA-256 of Bytes.
func (rc *Receipt) ID() RecordID { return recordID(rc.Bytes()) }

// ParseReceipt parses body ‖ signature. It does not verify the signature.
func ParseReceipt(b []byte) (*Receipt, error) {
	if len(b) != ReceiptSize {
		return nil, fmt.Errorf("%w: receipt of %d bytes (must be %d)", ErrMalformed, len(b), ReceiptSize)
	}
	d := decoder{b: b}
	d.header(receiptVersion, recordTypeReceipt, "receipt")
	rc := &Receipt{SigAlg: SignatureAlgorithm(d.u8()), Kind: ReceiptKind(d.u8())}
	rc.Node = d.key("node key")
	rc.Owner = d.key("owner key")
	rc.PathHash = d.hash32()
	rc.Sequence = d.u64()
	rc.Subject = d.hash32()
	rc.Fragment = d.hash32()
	rc.IssuedAt = d.u64()
	rc.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := rc.checkFields(); err != nil {
		return nil, err
	}
	return rc, nil
}
