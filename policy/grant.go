package policy

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// Grant limits (SPEC.md §3.4.3).
const (
	// MaxShares is the largest n (and so m) a grant may name. It bounds the
	// nodes an owner contacts and the cfrags a recipient collects.
	MaxShares = 32

	// MaxKFragSize bounds the kfrag carried with a grant for any algorithm;
	// an Umbral kfrag is exactly 310 bytes.
	MaxKFragSize = 1024

	// GrantBodySize is the size of a version 1 grant body.
	GrantBodySize = 252
	// PublicGrantSize is the size of body ‖ signature.
	PublicGrantSize = GrantBodySize + SignatureSize
	// MaxGrantSize bounds body ‖ signature ‖ u16 length ‖ kfrag.
	MaxGrantSize = PublicGrantSize + 2 + MaxKFragSize
)

// Grant is an owner-signed authorization for nodes to re-encrypt, for one
// recipient, capsules made under one prefix of the owner's hierarchy, using
// one kfrag of an m-of-n split re-encryption key (SPEC.md §3.4.3).
//
// The signature covers the body, which commits to the kfrag by its SHA-256
// (KFragHash) instead of containing it: a node can hand the signed grant
// without the secret kfrag (PublicBytes) to the recipient, who checks the
// owner's signature and learns the keys that verify the cfrag.
//
// A node stores a grant under StorageKey (owner ‖ recipient ‖ path hash):
// only the owner can sign a grant or revocation for that key, so nobody else
// can place or remove a fragment under the owner's path hash.
type Grant struct {
	PRE       PREAlgorithm
	SigAlg    SignatureAlgorithm
	PathAlg   PathHashAlgorithm
	Owner     PublicKey // owner identity key: verifies Signature
	Recipient Identity  // recipient identity key and receiving key
	PathHash  PathHash
	// DelegatingKey is the public key of the prefix's delegating key
	// (DelegatingKey): the key capsules under this prefix were made for.
	DelegatingKey PublicKey
	// VerifyingKey is the owner's kfrag signing public key: it verifies the
	// kfrag (node) and the cfrags (recipient).
	VerifyingKey PublicKey
	Threshold    uint8  // m: cfrags needed to decrypt
	Shares       uint8  // n: kfrags in the split
	Sequence     uint64 // ≥ 1, strictly increasing per owner and path hash
	Expiry       uint64 // Unix seconds; the grant is dead from this second on
	KFragHash    [32]byte
	Signature    Signature

	// KFrag is the secret kfrag bytes, nil in a public grant.
	KFrag []byte
}

// ExpiryTime returns Expiry as a time.
func (g *Grant) ExpiryTime() time.Time { return unixTime(g.Expiry) }

// StorageKey returns Owner ‖ Recipient.IdentityKey ‖ PathHash, the key a
// node files the grant under.
func (g *Grant) StorageKey() StorageKey {
	return NewStorageKey(g.Owner, g.Recipient.IdentityKey, g.PathHash)
}

// checkFields checks every body field's domain (everything but the
// signature and the kfrag).
func (g *Grant) checkFields() error {
	if err := g.PRE.check(); err != nil {
		return err
	}
	if err := g.SigAlg.check(); err != nil {
		return err
	}
	if err := g.PathAlg.check(); err != nil {
		return err
	}
	if err := checkThreshold(g.Threshold, g.Shares); err != nil {
		return err
	}
	if g.Sequence == 0 {
		return fmt.Errorf("%w: sequence number 0 (sequences start at 1)", ErrMalformed)
	}
	if err := checkTimestamp("expiry", g.Expiry); err != nil {
		return err
	}
	for _, k := range []struct {
		name string
		pk   *PublicKey
	}{
		{"owner key", &g.Owner},
		{"recipient identity key", &g.Recipient.IdentityKey},
		{"recipient receiving key", &g.Recipient.ReceivingKey},
		{"delegating key", &g.DelegatingKey},
		{"verifying key", &g.VerifyingKey},
	} {
		if _, err := ParsePublicKey(k.pk[:]); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
	}
	return nil
}

// checkThreshold enforces 1 ≤ m ≤ n ≤ MaxShares.
func checkThreshold(m, n uint8) error {
	if m < 1 || m > n || n > MaxShares {
		return fmt.Errorf("%w: m=%d n=%d; need 1 ≤ m ≤ n ≤ %d", ErrBadThreshold, m, n, MaxShares)
	}
	return nil
}

// BodyBytes returns the canonical body, the part the signature covers.
func (g *Grant) BodyBytes() []byte {
	b := make([]byte, 0, GrantBodySize)
	b = append(b, grantVersion, recordTypeGrant, byte(g.PRE), byte(g.SigAlg), byte(g.PathAlg))
	b = append(b, g.Owner[:]...)
	b = append(b, g.Recipient.IdentityKey[:]...)
	b = append(b, g.Recipient.ReceivingKey[:]...)
	b = append(b, g.PathHash[:]...)
	b = append(b, g.DelegatingKey[:]...)
	b = append(b, g.VerifyingKey[:]...)
	b = append(b, g.Threshold, g.Shares)
	b = appendU64(b, g.Sequence)
	b = appendU64(b, g.Expiry)
	return append(b, g.KFragHash[:]...)
}

// PublicBytes returns body ‖ signature: the signed grant without the kfrag,
// which a node may show the recipient.
func (g *Grant) PublicBytes() []byte {
	return append(g.BodyBytes(), g.Signature[:]...)
}

// Bytes returns body ‖ signature ‖ u16 len(kfrag) ‖ kfrag, the form an owner
// stores on a node and a node hands off. It requires KFrag.
func (g *Grant) Bytes() []byte {
	b := g.PublicBytes()
	b = appendU16(b, uint16(len(g.KFrag)))
	return append(b, g.KFrag...)
}

// ID returns the SHA-256 of PublicBytes: it names this signed grant (and,
// through KFragHash, this one fragment).
func (g *Grant) ID() RecordID { return recordID(g.PublicBytes()) }

// HasKFragHash reports whether KFrag matches the signed KFragHash.
func (g *Grant) HasKFragHash() bool {
	return g.KFrag != nil && sha256.Sum256(g.KFrag) == g.KFragHash
}

// ParseGrant parses body ‖ signature ‖ u16 length ‖ kfrag and checks that
// the kfrag matches the body's KFragHash. It does not verify the signature
// or the kfrag (VerifyGrant, ValidateGrantForStore).
func ParseGrant(b []byte) (*Grant, error) {
	if len(b) < PublicGrantSize+2 || len(b) > MaxGrantSize {
		return nil, fmt.Errorf("%w: grant of %d bytes (%d..%d)", ErrMalformed, len(b), PublicGrantSize+3, MaxGrantSize)
	}
	g, err := parseGrant(b[:PublicGrantSize])
	if err != nil {
		return nil, err
	}
	d := decoder{b: b[PublicGrantSize:]}
	n := int(d.u16())
	if n == 0 || n > MaxKFragSize {
		return nil, fmt.Errorf("%w: kfrag of %d bytes (1..%d)", ErrMalformed, n, MaxKFragSize)
	}
	g.KFrag = append([]byte(nil), d.take(n)...)
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if !g.HasKFragHash() {
		return nil, fmt.Errorf("%w: kfrag does not match the grant's kfrag hash", ErrBadKFrag)
	}
	return g, nil
}

// ParsePublicGrant parses body ‖ signature (PublicBytes). KFrag is nil.
func ParsePublicGrant(b []byte) (*Grant, error) {
	if len(b) != PublicGrantSize {
		return nil, fmt.Errorf("%w: public grant of %d bytes (must be %d)", ErrMalformed, len(b), PublicGrantSize)
	}
	return parseGrant(b)
}

func parseGrant(b []byte) (*Grant, error) {
	d := decoder{b: b}
	d.header(grantVersion, recordTypeGrant, "grant")
	g := &Grant{
		PRE:     PREAlgorithm(d.u8()),
		SigAlg:  SignatureAlgorithm(d.u8()),
		PathAlg: PathHashAlgorithm(d.u8()),
	}
	g.Owner = d.key("owner key")
	g.Recipient.IdentityKey = d.key("recipient identity key")
	g.Recipient.ReceivingKey = d.key("recipient receiving key")
	g.PathHash = d.hash32()
	g.DelegatingKey = d.key("delegating key")
	g.VerifyingKey = d.key("verifying key")
	g.Threshold = d.u8()
	g.Shares = d.u8()
	g.Sequence = d.u64()
	g.Expiry = d.u64()
	g.KFragHash = d.hash32()
	g.Signature = d.signature()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	if err := g.checkFields(); err != nil {
		return nil, err
	}
	return g, nil
}

// StorageKeySize is the size of a StorageKey.
const StorageKeySize = 2*PublicKeySize + PathHashSize

// StorageKey is owner identity key ‖ recipient identity key ‖ path hash: the
// identity under which a node files a grant, its tombstone and its last
// sequence number (the layout of package store's keys). Including the owner
// key means only the owner's signature can create or end an entry, even if
// someone else learns the path hash; including the recipient means a
// re-encryption request, which names the requester's own key, only ever
// looks at grants made for the requester.
type StorageKey [StorageKeySize]byte

// NewStorageKey returns owner ‖ recipient ‖ pathHash.
func NewStorageKey(owner, recipient PublicKey, pathHash PathHash) StorageKey {
	var k StorageKey
	copy(k[:], owner[:])
	copy(k[PublicKeySize:], recipient[:])
	copy(k[2*PublicKeySize:], pathHash[:])
	return k
}
