package policy

import (
	"crypto/sha256"
	"fmt"

	"github.com/kadre/kadre/rekey"
)

// signRecord signs label ‖ body (SPEC.md §3.4.2).
func signRecord(signer *rekey.Signer, label string, body []byte) (Signature, error) {
	d := signingDigest(label, body)
	sig, err := signer.Sign(d[:])
	if err != nil {
		return Signature{}, err
	}
	var s Signature
	copy(s[:], sig.Bytes())
	return s, nil
}

// verifyRecord checks sig over label ‖ body under pk. A high-S signature is
// refused even though the math would accept it (see Signature).
func verifyRecord(pk PublicKey, label string, body []byte, sig Signature) error {
	if err := checkSignatureEncoding(sig[:]); err != nil {
		return err
	}
	key, err := pk.Rekey()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	s, err := rekey.ParseSignature(sig[:])
	if err != nil {
		return fmt.Errorf("%w: signature does not parse", ErrBadSignature)
	}
	d := signingDigest(label, body)
	if !s.Verify(key, d[:]) {
		return ErrBadSignature
	}
	return nil
}

// signerKey returns the record form of the signer's public key and checks
// it against a key already set in the record (zero means "set it").
func signerKey(signer *rekey.Signer, set *PublicKey, what string) error {
	pk := PublicKeyOf(signer.VerifyingKey())
	if *set == (PublicKey{}) {
		*set = pk
		return nil
	}
	if *set != pk {
		return fmt.Errorf("%w: the signer's key is not the record's %s key", ErrMismatch, what)
	}
	return nil
}

// Sign signs the grant with the owner's identity signer. It fills zero
// fields it can derive: the algorithm identifiers (version 1 has one of
// each), Owner (from the signer) and KFragHash (from KFrag, when set). It
// refuses a grant whose fields are out of their domain, so a signed grant
// always parses.
func (g *Grant) Sign(owner *rekey.Signer) error {
	if g.PRE == 0 {
		g.PRE = PREUmbral
	}
	if g.SigAlg == 0 {
		g.SigAlg = SignatureECDSASecp256k1
	}
	if g.PathAlg == 0 {
		g.PathAlg = PathHashPairHMACSHA3
	}
	if err := signerKey(owner, &g.Owner, "owner"); err != nil {
		return err
	}
	if g.KFrag != nil {
		if len(g.KFrag) == 0 || len(g.KFrag) > MaxKFragSize {
			return fmt.Errorf("%w: kfrag of %d bytes (1..%d)", ErrMalformed, len(g.KFrag), MaxKFragSize)
		}
		g.KFragHash = sha256.Sum256(g.KFrag)
	}
	if err := g.checkFields(); err != nil {
		return err
	}
	var err error
	g.Signature, err = signRecord(owner, LabelGrant, g.BodyBytes())
	return err
}

// VerifySignature checks the owner's signature on the grant body.
func (g *Grant) VerifySignature() error {
	return verifyRecord(g.Owner, LabelGrant, g.BodyBytes(), g.Signature)
}

// Sign signs the revocation with the owner's identity signer, filling
// SigAlg and Owner when zero.
func (r *Revocation) Sign(owner *rekey.Signer) error {
	if r.SigAlg == 0 {
		r.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(owner, &r.Owner, "owner"); err != nil {
		return err
	}
	if err := r.checkFields(); err != nil {
		return err
	}
	var err error
	r.Signature, err = signRecord(owner, LabelRevocation, r.BodyBytes())
	return err
}

// VerifySignature checks the owner's signature on the revocation.
func (r *Revocation) VerifySignature() error {
	return verifyRecord(r.Owner, LabelRevocation, r.BodyBytes(), r.Signature)
}

// Sign signs the receipt with the node's identity signer, filling SigAlg
// and Node when zero.
func (rc *Receipt) Sign(node *rekey.Signer) error {
	if rc.SigAlg == 0 {
		rc.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(node, &rc.Node, "node"); err != nil {
		return err
	}
	if err := rc.checkFields(); err != nil {
		return err
	}
	var err error
	rc.Signature, err = signRecord(node, LabelReceipt, rc.BodyBytes())
	return err
}

// VerifySignature checks the node's signature on the receipt.
func (rc *Receipt) VerifySignature() error {
	return verifyRecord(rc.Node, LabelReceipt, rc.BodyBytes(), rc.Signature)
}

// Sign signs the node info with the node's identity signer, filling SigAlg
// and Node when zero.
func (ni *NodeInfo) Sign(node *rekey.Signer) error {
	if ni.SigAlg == 0 {
		ni.SigAlg = SignatureECDSASecp256k1
	}
	if err := signerKey(node, &ni.Node, "node"); err != nil {
		return err
	}
	if err := ni.checkFields(); err != nil {
		return err
	}
	var err error
	ni.Signature, err = signRecord(node, LabelNodeInfo, ni.BodyBytes())
	return err
}

// VerifySignature checks the node's signature on the node info.
func (ni *NodeInfo) VerifySignature() error {
	return verifyRecord(ni.Node, LabelNodeInfo, ni.BodyBytes(), ni.Signature)
}
