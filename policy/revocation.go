package policy

import (
	"fmt"
	"time"
)

// Revocation sizes (SPEC.md §3.4.4).
const (
	RevocationBodySize = 117
	RevocationSize     = RevocationBodySize + SignatureSize
)

// Revocation is an owner-signed order to end every grant the owner made
// under one path hash (so for one recipient and one prefix, all n fragments
// at once). A node that applies it deletes the fragment it holds for
// StorageKey, remembers Sequence as a tombstone, and from then on refuses
// any grant or revocation for that key whose sequence number is not greater
// (ValidateSequence): a replay of the revoked grant fails even though its
// signature is still valid. To grant the same prefix again, the owner signs
// a new grant with a sequence number above the revocation's.
type Revocation struct {
	SigAlg SignatureAlgorithm
	Owner  PublicKey // verifies Signature
	// Recipient is the recipient identity key of the grants it ends: nodes
	// file fragments per recipient, so that a recipient's requests never
	// touch another recipient's grants.
	Recipient PublicKey
	PathHash  PathHash
	Sequence  uint64 // ≥ 1, greater than the sequence of the grants it ends
	IssuedAt  uint64 // Unix seconds; informational (logs, ordering by owners)
	Signature Signature
}

// IssuedTime returns IssuedAt as a time.
func (r *Revocation) IssuedTime() time.Time { return unixTime(r.IssuedAt) }

// StorageKey returns Owner ‖ Recipient ‖ PathHash, the entry the
// revocation ends.
func (r *Revocation) StorageKey() StorageKey { return NewStorageKey(r.Owner, r.Recipient, r.PathHash) }

func (r *Revocation) checkFields() error {
	if err := r.SigAlg.check(); err != nil {
		return err
	}
	if _, err := ParsePublicKey(r.Owner[:]); err != nil {
		return fmt.Errorf("owner key: %w", err)
	}
	if _, err := ParsePublicKey(r.Recipient[:]); err != nil {
		return fmt.Errorf("recipient key: %w", err)
	}
	if r.Sequence == 0 {
		return fmt.Errorf("%w: sequence number 0 (sequences start at 1)", ErrMalformed)
	}
	return checkTimestamp("issue time", r.IssuedAt)
}

// BodyBytes returns the canonical body, the part the signature covers.
func (r *Revocation) BodyBytes() []byte {
	b := make([]byte, 0, RevocationBodySize)
	b = append(b, revocationVersion, recordTypeRevocation, byte(r.SigAlg))
	b = append(b, r.Owner[:]...)
	b = append(b, r.Recipient[:]...)
	b = append(b, r.PathHash[:]...)
	b = appendU64(b, r.Sequence)
	return appendU64(b, r.IssuedAt)
}

// Bytes returns body ‖ signature.
func (r *Revocation) Bytes() []byte { return append(r.BodyBytes(), r.Signature[:]...) }

// ID returns the SHA-256 of Bytes, which receipts name.
func (r *Revocation) ID() RecordID { return recordID(r.Bytes()) }

// ParseRevocation parses body ‖ signature. It does not verify the signature.
func ParseRevocation(b []byte) (*Revocation, error) {
	if len(b) != RevocationSize {
		return nil, fmt.Errorf("%w: revocation of %d bytes (must be %d)", ErrMalformed, len(b), RevocationSize)
	}
	d := decoder{b: b}
	d.header(revocationVersion, recordTypeRevocation, "revocation")
	r := &Revocation{SigAlg: SignatureAlgorithm(d.u8())}
	r.Owner = d.key("owner key")
	r.Recipient = d.key("recipient key")
	r.PathHash = d.hash32()
	r.Sequence = d.u64()
	r.IssuedAt = d.u64()
	r.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := r.checkFields(); err != nil {
		return nil, err
	}
	return r, nil
}
