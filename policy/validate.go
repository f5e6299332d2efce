package policy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kadre/kadre/rekey"
)

// This file holds the rules a node enforces (SPEC.md §3.5), as pure functions: the caller passes the clock, its limits
// and the state it remembers (the last sequence number per storage key), and
// gets nil or an error wrapping one sentinel.

// ValidateExpiry checks that expiry (Unix seconds) is in the future at now
// and no more than maxDuration after it (the node's advertised maximum,
// rounded down to whole seconds).
func ValidateExpiry(expiry uint64, now time.Time, maxDuration time.Duration) error {
	if err := ValidateLive(expiry, now); err != nil {
		return err
	}
	limit := now.Unix() + int64(maxDuration/time.Second)
	if maxDuration < 0 || expiry > uint64(max(limit, 0)) {
		return fmt.Errorf("%w: grant expires %s, this node keeps grants at most %s (until %s); grant a shorter period",
			ErrExpiryTooLong, unixTime(expiry).Format(time.RFC3339), days(maxDuration), unixTime(uint64(max(limit, 0))).Format(time.RFC3339))
	}
	return nil
}

// days writes a duration of whole days as "90d".
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// ValidateLive checks that a grant expiring at expiry (Unix seconds) is
// still alive at now: a grant is dead from its expiry second on.
func ValidateLive(expiry uint64, now time.Time) error {
	if n := now.Unix(); n < 0 || expiry <= uint64(n) {
		return fmt.Errorf("%w: expired at %s (now %s)", ErrExpired,
			unixTime(min(expiry, MaxTimestamp)).Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// ValidateSequence checks that seq is greater than last, the last sequence
// number the node accepted for the same storage key, from a grant or a
// revocation (0 when it has seen none). Equal is refused too: it is a replay.
func ValidateSequence(seq, last uint64) error {
	if seq <= last {
		return fmt.Errorf("%w: sequence %d is not greater than %d, the last seen for this owner and path hash; the owner must sign a new record with a higher sequence number",
			ErrStaleSequence, seq, last)
	}
	return nil
}

// VerifyGrantKFrag checks the grant's kfrag: it matches KFragHash, it is an
// Umbral kfrag in canonical form that signs both the delegating and the
// receiving key, and it verifies against the grant's VerifyingKey,
// DelegatingKey and Recipient.ReceivingKey. The returned kfrag is ready for
// rekey.Reencrypt.
func VerifyGrantKFrag(g *Grant) (*rekey.VerifiedKeyFrag, error) {
	if err := g.PRE.check(); err != nil {
		return nil, err
	}
	if g.KFrag == nil {
		return nil, fmt.Errorf("%w: the grant carries no kfrag", ErrBadKFrag)
	}
	if !g.HasKFragHash() {
		return nil, fmt.Errorf("%w: kfrag does not match the grant's kfrag hash", ErrBadKFrag)
	}
	if len(g.KFrag) != rekey.KeyFragSize {
		return nil, fmt.Errorf("%w: Umbral kfrag of %d bytes (must be %d)", ErrBadKFrag, len(g.KFrag), rekey.KeyFragSize)
	}
	kf, err := rekey.ParseKeyFrag(g.KFrag)
	if err != nil {
		return nil, fmt.Errorf("%w: kfrag does not parse", ErrBadKFrag)
	}
	// A kfrag that does not sign both keys would verify whatever keys the
	// grant names, so it is refused.
	if !kf.DelegatingKeySigned() || !kf.ReceivingKeySigned() {
		return nil, fmt.Errorf("%w: kfrag does not sign the delegating and receiving keys", ErrBadKFrag)
	}
	verifying, err1 := g.VerifyingKey.Rekey()
	delegating, err2 := g.DelegatingKey.Rekey()
	receiving, err3 := g.Recipient.ReceivingKey.Rekey()
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKFrag, err)
	}
	vkf, err := kf.Verify(verifying, delegating, receiving)
	if err != nil {
		return nil, fmt.Errorf("%w: it is not signed by the grant's verifying key for this delegating key and recipient", ErrBadKFrag)
	}
	return vkf, nil
}

// ValidateGrantForStore runs every stateless check a node makes before
// storing a grant (StoreGrant, or a hand-off from another node), cheapest
// first: field domains, expiry against now and the node's maxDuration, the
// owner's signature, and the kfrag. The sequence rule (ValidateSequence)
// needs the node's state and is applied by the store in the transaction
// that writes the grant, after the signature was checked here, so that an
// unauthenticated request cannot probe which storage keys a node knows.
func ValidateGrantForStore(g *Grant, now time.Time, maxDuration time.Duration) (*rekey.VerifiedKeyFrag, error) {
	if err := g.checkFields(); err != nil {
		return nil, err
	}
	if err := ValidateExpiry(g.Expiry, now, maxDuration); err != nil {
		return nil, err
	}
	if err := g.VerifySignature(); err != nil {
		return nil, err
	}
	return VerifyGrantKFrag(g)
}

// ValidateRevocation runs the stateless checks a node makes before applying
// a revocation: field domains and the owner's signature. Applying it (the
// store, in one transaction) checks the sequence number (ValidateSequence),
// deletes the fragment, records r.Sequence as the new last sequence (the
// tombstone), and the node answers with a ReceiptRevoked or
// ReceiptRevokedNotHeld.
func ValidateRevocation(r *Revocation) error {
	if err := r.checkFields(); err != nil {
		return err
	}
	return r.VerifySignature()
}

// AuthorizeRecipient checks that the peer asking for re-encryption is the
// grant's recipient. remote is the peer's public key as the libp2p Noise
// handshake authenticated it (33-byte compressed secp256k1, from
// Conn().RemotePublicKey().Raw()); a peer with any other key type cannot be
// a recipient.
func AuthorizeRecipient(g *Grant, remote []byte) error {
	if len(remote) != PublicKeySize || PublicKey(remote) != g.Recipient.IdentityKey {
		return ErrNotRecipient
	}
	return nil
}

// CheckServable reports whether a node may re-encrypt with stored grant g
// for a request from remote naming owner and pathHash at time now.
func CheckServable(g *Grant, owner PublicKey, pathHash PathHash, remote []byte, now time.Time) error {
	if g.Owner != owner || g.PathHash != pathHash {
		return fmt.Errorf("%w: stored grant is for another owner or path hash", ErrMismatch)
	}
	if err := AuthorizeRecipient(g, remote); err != nil {
		return err
	}
	return ValidateLive(g.Expiry, now)
}

// VerifyServedGrant is the recipient's check of the public grant a node
// returned with a cfrag for level hash pathHash of owner's hierarchy: the
// owner's signature, and that the grant is the owner's, for this recipient
// and this level. (Expiry is the node's to enforce; a recipient may use a
// cfrag that was served before the grant expired.)
func VerifyServedGrant(g *Grant, owner PublicKey, me Identity, pathHash PathHash) error {
	if err := g.checkFields(); err != nil {
		return err
	}
	if err := g.VerifySignature(); err != nil {
		return err
	}
	if g.Owner != owner {
		return fmt.Errorf("%w: the grant is signed by another owner", ErrMismatch)
	}
	if g.Recipient != me {
		return fmt.Errorf("%w: the grant is for another recipient", ErrMismatch)
	}
	if g.PathHash != pathHash {
		return fmt.Errorf("%w: the grant is for another level", ErrMismatch)
	}
	return nil
}

// VerifyCFrag checks a cfrag a node returned for capsule under verified
// public grant g, with the keys the grant names.
func VerifyCFrag(g *Grant, capsule *rekey.Capsule, cfrag []byte) (*rekey.VerifiedCapsuleFrag, error) {
	if err := g.PRE.check(); err != nil {
		return nil, err
	}
	cf, err := rekey.ParseCapsuleFrag(cfrag)
	if err != nil {
		return nil, fmt.Errorf("%w: cfrag does not parse", ErrMalformed)
	}
	verifying, err1 := g.VerifyingKey.Rekey()
	delegating, err2 := g.DelegatingKey.Rekey()
	receiving, err3 := g.Recipient.ReceivingKey.Rekey()
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	vcf, err := cf.Verify(capsule, verifying, delegating, receiving)
	if err != nil {
		return nil, fmt.Errorf("%w: cfrag does not verify under the grant's keys", ErrBadSignature)
	}
	return vcf, nil
}

// VerifyReceiptForGrant checks a node's answer to a StoreGrant of g:
// signed by node, of kind STORED, naming g as subject and fragment.
func VerifyReceiptForGrant(rc *Receipt, node PublicKey, g *Grant) error {
	if rc.Kind != ReceiptStored {
		return fmt.Errorf("%w: a %s receipt does not answer a grant", ErrMismatch, rc.Kind)
	}
	if rc.Fragment != g.ID() {
		return fmt.Errorf("%w: the receipt names another fragment", ErrMismatch)
	}
	return verifyReceipt(rc, node, g.ID(), g.Owner, g.PathHash, g.Sequence)
}

// VerifyReceiptForRevocation checks a node's answer to revocation r:
// signed by node, of a revocation kind, naming r.
func VerifyReceiptForRevocation(rc *Receipt, node PublicKey, r *Revocation) error {
	if !rc.Kind.IsRevocation() {
		return fmt.Errorf("%w: a %s receipt does not answer a revocation", ErrMismatch, rc.Kind)
	}
	return verifyReceipt(rc, node, r.ID(), r.Owner, r.PathHash, r.Sequence)
}

func verifyReceipt(rc *Receipt, node PublicKey, subject RecordID, owner PublicKey, pathHash PathHash, seq uint64) error {
	if rc.Node != node {
		return fmt.Errorf("%w: the receipt is signed by another node than the one asked", ErrMismatch)
	}
	if rc.Subject != subject || rc.Owner != owner || rc.PathHash != pathHash || rc.Sequence != seq {
		return fmt.Errorf("%w: the receipt names another record", ErrMismatch)
	}
	if err := rc.checkFields(); err != nil {
		return err
	}
	return rc.VerifySignature()
}

// Verdict is what the receipts of one revocation prove about the
// fragments of the grant it ends (SPEC.md §3.5.8).
type Verdict struct {
	// Fragments is how many fragments the holder map lists for the grant
	// (the ones placed), M how many decrypt.
	Fragments, M int
	// Deleted counts the fragments whose every current holder (the map's
	// holder, or where hand-offs moved it) answered with a valid REVOKED
	// receipt naming that fragment.
	Deleted int
	// Remaining lists the fragments not proven deleted.
	Remaining []RecordID
	// Acknowledged counts the other nodes that accepted the revocation
	// (REVOKED_NOT_HELD, or REVOKED for a fragment they are not the
	// current holder of): they will refuse the revoked grant, which proves
	// nothing about any fragment.
	Acknowledged int
	// Dead: fewer than M fragments can remain, so no recipient can obtain
	// M cfrags of the grant any more, even from colluding holders.
	Dead bool
}

// RevocationVerdict weighs the receipts a revocation r collected against
// the grant's entry in the owner-signed holder map and the fragments'
// current holders (CurrentHolders). A receipt counts as proof for a
// fragment only if it is valid (VerifyReceiptForRevocation against its own
// node), of kind REVOKED, names that fragment, and comes from a node that
// currently holds it; forged receipts, receipts of other nodes, and
// several receipts of one node for one fragment prove nothing more.
func RevocationVerdict(r *Revocation, e *MapEntry, current map[RecordID][]PublicKey, receipts []*Receipt) Verdict {
	v := Verdict{Fragments: len(e.Holders), M: int(e.Threshold)}
	deletedBy := map[RecordID]map[PublicKey]bool{}
	acked := map[PublicKey]bool{}
	for _, rc := range receipts {
		if rc == nil || VerifyReceiptForRevocation(rc, rc.Node, r) != nil {
			continue
		}
		holds := false
		if rc.Kind == ReceiptRevoked {
			for _, k := range current[rc.Fragment] {
				holds = holds || k == rc.Node
			}
		}
		if !holds {
			acked[rc.Node] = true
			continue
		}
		if deletedBy[rc.Fragment] == nil {
			deletedBy[rc.Fragment] = map[PublicKey]bool{}
		}
		deletedBy[rc.Fragment][rc.Node] = true
	}
	for _, h := range e.Holders {
		holders := current[h.GrantID]
		all := len(holders) > 0
		for _, k := range holders {
			all = all && deletedBy[h.GrantID][k]
		}
		if all {
			v.Deleted++
		} else {
			v.Remaining = append(v.Remaining, h.GrantID)
		}
	}
	for k := range acked {
		proved := false
		for _, by := range deletedBy {
			proved = proved || by[k]
		}
		if !proved {
			v.Acknowledged++
		}
	}
	v.Dead = v.Fragments-v.Deleted < v.M
	return v
}

// VerifyNodeInfo checks node info received from the peer whose
// authenticated key is node.
func VerifyNodeInfo(ni *NodeInfo, node PublicKey) error {
	if ni.Node != node {
		return fmt.Errorf("%w: the node info is signed by another node than the one asked", ErrMismatch)
	}
	if err := ni.checkFields(); err != nil {
		return err
	}
	return ni.VerifySignature()
}

// GrantParams are the owner's choices for one grant (one prefix at one key
// epoch, one recipient).
type GrantParams struct {
	Recipient Identity
	Prefix    Path
	Epoch     uint32 // the prefix's key epoch (SPEC.md §1)
	Threshold uint8  // m
	Shares    uint8  // n
	Sequence  uint64 // greater than any earlier grant or revocation for this recipient, prefix and epoch
	Expiry    uint64 // Unix seconds
}

// NewGrants splits the re-encryption key from the owner's delegating key
// for p.Prefix at p.Epoch to the recipient into n kfrags and returns n
// signed grants, one per kfrag, for n distinct nodes.
func NewGrants(owner *rekey.Keyring, p GrantParams) ([]*Grant, error) {
	return NewGrantsWithRand(rand.Reader, owner, p)
}

// NewGrantsWithRand is NewGrants with the kfrag randomness from rnd.
func NewGrantsWithRand(rnd io.Reader, owner *rekey.Keyring, p GrantParams) ([]*Grant, error) {
	if err := checkThreshold(p.Threshold, p.Shares); err != nil {
		return nil, err
	}
	receiving, err := p.Recipient.ReceivingKey.Rekey()
	if err != nil {
		return nil, fmt.Errorf("%w: receiving key: %w", ErrInvalidIdentity, err)
	}
	pair, err := OwnerPairKey(owner, p.Recipient.IdentityKey)
	if err != nil {
		return nil, err
	}
	delegating := DelegatingKey(owner, p.Prefix, p.Epoch)
	kfragSigner := owner.KFragSigner()
	kfrags, err := rekey.GenerateKFragsWithRand(rnd, delegating, receiving, kfragSigner,
		int(p.Threshold), int(p.Shares), true, true)
	if err != nil {
		return nil, fmt.Errorf("policy: failed to generate kfrags: %w", err)
	}
	me := IdentityOf(owner)
	signer := IdentitySigner(owner)
	grants := make([]*Grant, len(kfrags))
	for i, kf := range kfrags {
		g := &Grant{
			Owner:         me.IdentityKey,
			Recipient:     p.Recipient,
			PathHash:      pair.PathHash(p.Prefix, p.Epoch),
			DelegatingKey: PublicKeyOf(delegating.PublicKey()),
			VerifyingKey:  PublicKeyOf(kfragSigner.VerifyingKey()),
			Threshold:     p.Threshold,
			Shares:        p.Shares,
			Sequence:      p.Sequence,
			Expiry:        p.Expiry,
			KFrag:         kf.Bytes(),
		}
		if err := g.Sign(signer); err != nil {
			return nil, err
		}
		grants[i] = g
	}
	return grants, nil
}
